"""What govfn's worker does with a request it has read: the loop or the thread pool.

Receivers (`POST /`, `POST /functions/<id>/events`) and the health probes of a `GovfnApp`
are answered on the worker's event loop: `Receivers.respond()` awaits the runtime there,
with no thread in between. Everything else (the Flask management API, or any WSGI app
that is not a `GovfnApp`) runs as WSGI in a small thread pool, with a full environ.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any

from govfn.app import HEALTH, RECEIVER, GovfnApp
from govfn.problem import HttpProblem, status_line
from govfn.receiver.receivers import EventRequest
from govfn.server.protocol import Reply, Request
from govfn.server.wire import RequestHead

log = logging.getLogger("govfn.server")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WorkerHandler:
    """The `Handler` of govfn's worker connections."""

    def __init__(
        self,
        app: WsgiApp,
        pool: Executor,
        loop: asyncio.AbstractEventLoop,
        *,
        multiprocess: bool = False,
    ) -> None:
        self.app = app
        self.govfn = app if isinstance(app, GovfnApp) else None
        self.pool = pool
        self.loop = loop
        self.multiprocess = multiprocess

    async def handle(self, request: Request) -> Reply:
        govfn = self.govfn
        if govfn is not None:
            head = request.head
            route, function_id = govfn.route(head.method, head.path)
            if route == RECEIVER:
                status, headers, body = await govfn.receivers.respond(
                    event_request(head), request.body, function_id
                )
                return status_line(status), headers, body
            if route == HEALTH:
                answer = govfn.health(head.path)
                if answer is not None:
                    code, body = answer
                    return status_line(code), _JSON, body
        environ = wsgi_environ(request, self.multiprocess)
        return await self.loop.run_in_executor(self.pool, run_wsgi, self.app, environ)

    def too_large(self, head: RequestHead, declared: int | None, limit: int) -> Reply:
        if declared is not None:
            detail = f"body of {declared} bytes is over the {limit}-byte limit"
            problem = HttpProblem(413, detail, attribute="content-length")
        else:
            problem = HttpProblem(413, f"body is over the {limit}-byte limit", attribute="body")
        if self.govfn is not None:
            self.govfn.metrics.rejected(413)
        return status_line(413), problem.headers(), problem.to_bytes()


_JSON = [("Content-Type", "application/json")]


def event_request(head: RequestHead) -> EventRequest:
    """The receiver's view of a head: Content-Type, `ce-*` fields, traceparent, Authorization.

    Field names holding `_` are dropped, as gunicorn drops them from a WSGI environ; a
    repeated `ce-*` field is joined with "," as in a WSGI environ.
    """
    content_type = ""
    traceparent = None
    authorization = None
    ce: dict[str, str] = {}
    for name, value in head.headers:
        if name[:3] == "ce-":
            if "_" in name:
                continue
            key = name[3:]
            ce[key] = f"{ce[key]},{value}" if key in ce else value
        elif name == "content-type":
            content_type = value
        elif name == "traceparent":
            traceparent = value or None
        elif name == "authorization":
            authorization = value or None
    return EventRequest(head.method, content_type, ce, traceparent, authorization)


def wsgi_environ(request: Request, multiprocess: bool) -> dict[str, Any]:
    """A PEP 3333 environ; the body is read already (wsgi.input is a BytesIO)."""
    head = request.head
    server_name, server_port = request.local
    remote_addr, remote_port = request.peer
    environ: dict[str, Any] = {
        "REQUEST_METHOD": head.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": head.path,
        "QUERY_STRING": head.query,
        "RAW_URI": head.target,
        "SERVER_PROTOCOL": head.version,
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(server_port),
        "REMOTE_ADDR": remote_addr,
        "REMOTE_PORT": str(remote_port),
        "CONTENT_LENGTH": str(len(request.body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
    }
    for name, value in head.headers:
        if "_" in name or name in ("content-length", "transfer-encoding"):
            continue
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
            continue
        key = "HTTP_" + name.upper().replace("-", "_")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def run_wsgi(app: WsgiApp, environ: dict[str, Any]) -> Reply:
    """Call a WSGI app to the end of its response (in a pool thread)."""
    started: list[Any] = []
    chunks: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if started and exc_info is None:
            raise AssertionError("start_response called twice without exc_info")
        started[:] = [status, headers]
        return chunks.append

    try:
        result = app(environ, start_response)
        try:
            for chunk in result:
                if chunk:
                    chunks.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not started:
            raise RuntimeError("the WSGI app returned without calling start_response")
    except Exception:
        log.exception("WSGI app failed on %s %s", environ["REQUEST_METHOD"], environ["PATH_INFO"])
        problem = HttpProblem(500, "internal error; see the server log")
        return status_line(500), problem.headers(), problem.to_bytes()
    status, headers = started
    return status, list(headers), b"".join(chunks)
