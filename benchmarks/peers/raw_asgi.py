"""The stack limit: a raw ASGI CloudEvent echo, no validation, no ledger.

It answers a binary-mode CloudEvent with a binary-mode ECHO_REPLIED event carrying the same
data, as govfn's `echo` does, and nothing more: what Python can serve at best on the same
machine. Run on uvicorn (uvloop + httptools) and on granian, each from its own venv:
`uvicorn benchmarks.peers.raw_asgi:app` / `granian --interface asgi benchmarks.peers.raw_asgi:app`.
"""

from __future__ import annotations

from typing import Any

Scope = dict[str, Any]


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            stage = (await receive())["type"].removeprefix("lifespan.")
            await send({"type": f"lifespan.{stage}.complete"})
            if stage == "shutdown":
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    event_id = b""
    content_type = b"application/json"
    for name, value in scope["headers"]:
        if name == b"ce-id":
            event_id = value
        elif name == b"content-type":
            content_type = value
    headers = [
        (b"content-type", content_type),
        (b"ce-specversion", b"1.0"),
        (b"ce-id", b"reply-" + event_id),
        (b"ce-source", b"/benchmarks/echo"),
        (b"ce-type", b"ECHO_REPLIED"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
