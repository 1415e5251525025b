"""A CloudEvents sink double on loopback: what K_SINK points at in the tests."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SinkDouble(ThreadingHTTPServer):
    """A CloudEvents receiver on loopback (what K_SINK points at); refuses with 503 while
    `down` is set. `received` holds each accepted request's lower-cased headers and body.

    Like a sink that verifies Knative's OIDC tokens: with `token` set, a request without
    `Authorization: Bearer <token>` is answered 401; while `forbidden` is set, 403 (a valid
    sender that no policy allows). `unauthorized` counts both. With `tls`, it serves https."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.down = threading.Event()
        self.forbidden = threading.Event()
        self.token: str | None = None
        self.received: list[dict[str, str]] = []
        self.refused = 0
        self.unauthorized = 0
        self.tls = tls
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}/"


class _SinkHandler(BaseHTTPRequestHandler):
    server: SinkDouble

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        token = self.server.token
        if token is not None and self.headers.get("authorization") != f"Bearer {token}":
            self.server.unauthorized += 1
            self.send_response(401)
            self.send_header("www-authenticate", "Bearer")
        elif self.server.forbidden.is_set():
            self.server.unauthorized += 1
            self.send_response(403)
        elif self.server.down.is_set():
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
