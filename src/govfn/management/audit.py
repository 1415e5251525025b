"""The Chronicle for auditors: each log as C2SP tlog-tiles, and records' tlog-proofs.

    GET /chronicle/logs                              [{"origin", "size", "prefix"}]
    GET /chronicle/logs/<log>/checkpoint             the latest signed checkpoint
    GET /chronicle/logs/<log>/tile/<L>/<N>[.p/<W>]   hash tiles
    GET /chronicle/logs/<log>/tile/entries/<N>[...]  entry bundles
    GET /chronicle/proofs/<cid>                      a c2sp.org/tlog-proof@v1 file

`<log>` is `default` for the one log of a SQLite file, a log's id on PostgreSQL. Only
logs with a signed checkpoint are listed and served (404 saying why otherwise), to whom
the lineage routes answer (`--dev`, or the bearer of GOVFN_API_TOKEN): entries are whole
records. Tiles
and bundles are immutable (cached for a year); the checkpoint for 5 seconds. Requests
run in the worker's thread pool, never on its event loop; a log's latest checkpoint is
read again at most once a second, and at once for a full tile it did not cover (so a
checkpoint just signed by another process is served); a partial tile asks the ledger for
a checkpoint of a size that needs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response

from govfn.chronicle.proofs import ProofError, record_proof
from govfn.chronicle.tiles import (
    Published,
    TileError,
    TileLog,
    log_path_name,
    parse_tile_path,
    read_tile,
)
from govfn.chronicle.tiles import published as read_published
from govfn.problem import HttpProblem

if TYPE_CHECKING:
    from govfn.chronicle.chronicle import Chronicle

PREFIX = "/chronicle/logs/"
AUDIT = "the Chronicle's tiles and proofs"
IMMUTABLE = "public, max-age=31536000, immutable"
CHECKPOINT_MAX_AGE = "public, max-age=5"
_REREAD_S = 1.0


class TileViews:
    """The tiles of one process's ledger (None: it keeps none)."""

    def __init__(self, ledger: Chronicle | None) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()
        self._published: dict[str, tuple[float, Published | None]] = {}

    def _logs(self) -> dict[str, TileLog]:
        if self.ledger is None:
            raise HttpProblem(404, "this process keeps no Chronicle ledger")
        return {log_path_name(name): log for name, log in self.ledger.audited_logs()}

    def _read(self, name: str, log: TileLog, *, fresh: bool = False) -> Published | None:
        now = time.monotonic()
        with self._lock:
            cached = self._published.get(name)
        if cached is not None and not fresh and now - cached[0] < _REREAD_S:
            return cached[1]
        value = read_published(log)
        with self._lock:
            self._published[name] = (now, value)
        return value

    def listing(self) -> list[dict[str, Any]]:
        listed = []
        for name, log in self._logs().items():
            checkpoints = self._read(name, log)
            if checkpoints is not None:
                listed.append(
                    {
                        "origin": checkpoints.checkpoint.origin,
                        "size": checkpoints.size,
                        "prefix": f"{PREFIX}{name}/",
                    }
                )
        return listed

    def _published_log(self, name: str) -> tuple[TileLog, Published]:
        log = self._logs().get(name)
        if log is None:
            raise HttpProblem(404, f"no Chronicle log {name!r} (GET {PREFIX[:-1]} lists them)")
        checkpoints = self._read(name, log)
        if checkpoints is None:
            raise HttpProblem(
                404,
                f"Chronicle log {name!r} has no signed checkpoint: its tiles are served once "
                "one is signed (GOVFN_CHRONICLE_SIGNING_KEY)",
            )
        return log, checkpoints

    def checkpoint(self, name: str) -> Response:
        _, checkpoints = self._published_log(name)
        headers = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": CHECKPOINT_MAX_AGE}
        return Response(checkpoints.note.encode("utf-8"), 200, headers)

    def tile(self, name: str, rest: str) -> Response:
        log, checkpoints = self._published_log(name)
        try:
            request = parse_tile_path(f"tile/{rest}")
        except TileError as exc:
            raise HttpProblem(404, str(exc)) from None
        try:
            body = read_tile(log, request, checkpoints)
            if body is None and not request.partial:  # perhaps covered since the last reading
                fresh = self._read(name, log, fresh=True)
                body = None if fresh is None else read_tile(log, request, fresh)
        except TileError as exc:
            raise HttpProblem(500, str(exc)) from None
        if body is None:
            raise HttpProblem(
                404,
                f"{request.path()} is not published: no signed checkpoint of log {name!r} "
                f"needs it (latest tree size {checkpoints.size})",
            )
        headers = {"Content-Type": "application/octet-stream", "Cache-Control": IMMUTABLE}
        return Response(body, 200, headers)

    def proof(self, cid: str) -> Response:
        if self.ledger is None:
            raise HttpProblem(404, "this process keeps no Chronicle ledger")
        try:
            text = record_proof(self.ledger, cid).text()
        except KeyError:
            raise HttpProblem(404, f"no record {cid} in the Chronicle", attribute="cid") from None
        except ProofError as exc:
            raise HttpProblem(404, str(exc), attribute="cid") from None
        headers = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache"}
        return Response(text.encode("utf-8"), 200, headers)


def add_audit_routes(flask: Flask, ledger: Chronicle | None, guard: Callable[[], None]) -> None:
    """The routes above; `guard()` raises HttpProblem for a request that may not read the
    Chronicle (the same rule as the lineage routes: entries are whole records)."""
    views = TileViews(ledger)

    @flask.get("/chronicle/logs")
    def chronicle_logs() -> Response:
        import json

        guard()
        return Response(json.dumps(views.listing()), 200, {"Content-Type": "application/json"})

    @flask.get("/chronicle/logs/<name>/checkpoint")
    def chronicle_checkpoint(name: str) -> Response:
        guard()
        return views.checkpoint(name)

    @flask.get("/chronicle/logs/<name>/tile/<path:rest>")
    def chronicle_tile(name: str, rest: str) -> Response:
        guard()
        return views.tile(name, rest)

    @flask.get("/chronicle/proofs/<cid>")
    def chronicle_proof(cid: str) -> Response:
        guard()
        return views.proof(cid)


_PROBLEM = {"$ref": "#/components/responses/Problem"}
_REFUSED = {"401": _PROBLEM, "403": _PROBLEM}  # without --dev or the token
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_BYTES = {
    "description": "Immutable bytes",
    "content": {"application/octet-stream": {"schema": {"type": "string"}}},
}
_TEXT = {"description": "Text", "content": {"text/plain": {"schema": {"type": "string"}}}}

OPERATIONS: dict[str, dict[str, Any]] = {
    "/chronicle/logs": {
        "get": {
            "summary": "The Chronicle's signed logs, each served as C2SP tlog-tiles "
            "under its prefix",
            "responses": {
                "200": {
                    "description": "One entry per log with a signed checkpoint",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "origin": {"type": "string"},
                                        "size": {"type": "integer"},
                                        "prefix": {"type": "string"},
                                    },
                                },
                            }
                        }
                    },
                },
                "404": _PROBLEM,
                **_REFUSED,
            },
            "security": _BEARER,
        }
    },
    "/chronicle/logs/{name}/checkpoint": {
        "get": {
            "summary": "The log's latest signed checkpoint with its witness cosignatures",
            "parameters": [_NAME],
            "responses": {"200": _TEXT, "404": _PROBLEM, **_REFUSED},
            "security": _BEARER,
        }
    },
    "/chronicle/logs/{name}/tile/{rest}": {
        "get": {
            "summary": "A tlog-tiles hash tile (<L>/<N>[.p/<W>]) or entry bundle "
            "(entries/<N>[.p/<W>])",
            "parameters": [
                _NAME,
                {"name": "rest", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "responses": {"200": _BYTES, "404": _PROBLEM, "500": _PROBLEM, **_REFUSED},
            "security": _BEARER,
        }
    },
    "/chronicle/proofs/{cid}": {
        "get": {
            "summary": "A record's inclusion proof as a c2sp.org/tlog-proof@v1 file",
            "parameters": [
                {"name": "cid", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {"200": _TEXT, "404": _PROBLEM, **_REFUSED},
            "security": _BEARER,
        }
    },
}
