"""An OpenLineage backend double on loopback (what GOVFN_OPENLINEAGE_URL points at): it
takes RunEvents as OpenLineage's HTTP transport sends them (POST <url>/api/v1/lineage,
application/json), checks each against the vendored OpenLineage schema, and refuses
with 503 while `down` is set."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support.openlineage_schema import validate_event


class OpenLineageBackend(ThreadingHTTPServer):
    def __init__(self, base_path: str = "") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.base_path = base_path
        self.down = threading.Event()
        self.events: list[dict[str, Any]] = []
        self.problems: list[str] = []  # anything a real backend would refuse
        self.refused = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{self.base_path}"


class _Handler(BaseHTTPRequestHandler):
    server: OpenLineageBackend

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.server.down.is_set():
            self.server.refused += 1
            return self._answer(503)
        problem = None
        if self.path != self.server.base_path + "/api/v1/lineage":
            problem = f"POST to {self.path}"
        elif self.headers.get("content-type") != "application/json":
            problem = f"content-type {self.headers.get('content-type')}"
        else:
            try:
                event = json.loads(body)
                validate_event(event)
            except Exception as exc:  # the double reports what a backend would refuse
                problem = f"invalid RunEvent: {exc}"
        if problem is not None:
            self.server.problems.append(problem)
            return self._answer(400)
        self.server.events.append(event)
        self._answer(201)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass
