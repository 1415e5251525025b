"""The CloudEvent echo function on func-python 0.8.1, served through its own `serve()`.

It answers each event with a binary-mode CloudEvent of type ECHO_REPLIED carrying the same
data, as govfn's `echo` does. func-python binds LISTEN_ADDRESS (set by the benchmark).
Run with the func-python venv's interpreter: `python -m benchmarks.peers.func_python_echo`.
"""

from __future__ import annotations

from typing import Any

from cloudevents.core.v1.event import CloudEvent
from func_python.cloudevent import serve


class EchoFunction:
    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        event = scope["event"]
        reply = CloudEvent(
            {"type": "ECHO_REPLIED", "source": "/benchmarks/echo"},
            data=event.get_data(),
        )
        await send.binary(reply)


def new() -> EchoFunction:
    return EchoFunction()


if __name__ == "__main__":
    serve(new)
