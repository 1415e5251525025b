"""A CloudEvents sink double on loopback: what K_SINK points at in the tests."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SinkDouble(ThreadingHTTPServer):
    """A CloudEvents receiver on loopback (what K_SINK points at); refuses with 503 while
    `down` is set. `received` holds each accepted request's lower-cased headers and body."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.down = threading.Event()
        self.received: list[dict[str, str]] = []
        self.refused = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _SinkHandler(BaseHTTPRequestHandler):
    server: SinkDouble

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.server.down.is_set():
            self.server.refused += 1
            self.send_response(503)
        else:
            event = {k.lower(): v for k, v in self.headers.items()} | {"body": body.decode()}
            self.server.received.append(event)
            self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass
