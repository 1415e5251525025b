"""The stack limit with the lineage a governed function must leave: the raw ASGI echo plus the
least two durable, content-addressed, chained records can cost.

For each event, before answering, it writes what govfn's Chronicle promises at the very least:
a FUNCTION_INVOKED and a FUNCTION_COMPLETED record, each a sorted-key compact JSON document
named by the SHA-256 of its bytes, the first naming the event's data by its SHA-256, the second
naming the first; both appended to an SQLite file in WAL mode (synchronous=NORMAL, as govfn's
default) with a hash chain over them, and committed before the answer. Events that arrive in
the same turn of the event loop share one commit (group commit, as govfn's Backstop does).

What it leaves out, so that it stays a floor: CloudEvent validation, GSAP context, RFC 8785
number rules, CIDs' multibase encoding, the Merkle tree hashes and the lookup-by-CID index,
the outbox, logs and metrics. Run on uvicorn (uvloop + httptools) from the uvicorn venv, with
the file named by FLOOR_LEDGER. SQLite checkpoints the log as it does by default, inside the
commit that crosses 1,000 pages: a stall of the event loop that shows in its p99.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import time
from typing import Any

Scope = dict[str, Any]

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


class _GroupCommit:
    """Rows of every event that arrived in this turn of the loop, committed together."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS records "
            "(seq INTEGER PRIMARY KEY, cid TEXT NOT NULL, body BLOB NOT NULL, chain BLOB NOT NULL)"
        )
        self.chain = b"\0" * 32
        self.rows: list[tuple[str, bytes, bytes]] = []
        self.waiting: list[asyncio.Future[None]] = []

    def append(self, cid: str, body: bytes) -> None:
        self.chain = hashlib.sha256(self.chain + body).digest()
        self.rows.append((cid, body, self.chain))

    def committed(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        if not self.waiting:
            loop.call_soon(self.flush)
        future = loop.create_future()
        self.waiting.append(future)
        return future

    def flush(self) -> None:
        rows, self.rows = self.rows, []
        waiting, self.waiting = self.waiting, []
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("INSERT INTO records(cid, body, chain) VALUES (?, ?, ?)", rows)
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            for future in waiting:
                future.set_exception(exc)
            return
        for future in waiting:
            future.set_result(None)


_ledger: _GroupCommit | None = None


def _record(document: dict[str, Any]) -> tuple[str, bytes]:
    body = _dumps(document).encode()
    return hashlib.sha256(body).hexdigest(), body


async def app(scope: Scope, receive: Any, send: Any) -> None:
    global _ledger
    if scope["type"] == "lifespan":
        while True:
            stage = (await receive())["type"].removeprefix("lifespan.")
            await send({"type": f"lifespan.{stage}.complete"})
            if stage == "shutdown":
                return
    if _ledger is None:
        _ledger = _GroupCommit(os.environ["FLOOR_LEDGER"])
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    event_id = b""
    event_type = b""
    content_type = b"application/json"
    for name, value in scope["headers"]:
        if name == b"ce-id":
            event_id = value
        elif name == b"ce-type":
            event_type = value
        elif name == b"content-type":
            content_type = value

    data_cid = hashlib.sha256(body).hexdigest()
    invoked_cid, invoked = _record(
        {
            "type": "FUNCTION_INVOKED",
            "function_id": "echo",
            "event_id": event_id.decode(),
            "event_type": event_type.decode(),
            "input_cid": data_cid,
            "invoked_at": time.time(),
        }
    )
    _ledger.append(invoked_cid, invoked)
    completed_cid, completed = _record(
        {
            "type": "FUNCTION_COMPLETED",
            "function_id": "echo",
            "invoked_cid": invoked_cid,
            "output_cid": data_cid,
            "success": True,
            "completed_at": time.time(),
        }
    )
    _ledger.append(completed_cid, completed)
    await _ledger.committed()

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
