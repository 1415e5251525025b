"""Once per trigger event: the idempotency store behind `idempotent=True` functions.

Brokers deliver at least once. For an idempotent function, the runtime claims the key
(function, event source, event id) before running the handler:

    claim → "run"          first delivery (or the previous claim expired): run the handler
          → "replay"       already done: answer with the stored result, run nothing
          → "in_progress"  another delivery is running it now: the broker should retry later
          → "conflict"     same key, different payload: refuse, never retry

A success stores the result; a failure releases the key so the broker's retry can run.
The store is one SQLite file shared by every worker process of a pod. A claim whose
holder died is taken over once its lease (the function's timeout, at least a minute)
has passed; stored results expire after `expiry_s`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

from govfn.sqlite import open_shared

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    state       TEXT NOT NULL,
    result      TEXT,
    until       REAL NOT NULL
) WITHOUT ROWID;
"""

DEFAULT_EXPIRY_S = 7 * 24 * 3600.0
MIN_LEASE_S = 60.0


def _has_claims_table(conn: sqlite3.Connection) -> bool:
    rows = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'claims'").fetchall()
    return bool(rows)


class Claim(NamedTuple):
    status: str  # "run" | "replay" | "in_progress" | "conflict"
    key: str
    result: dict[str, Any] | None = None


def idempotency_key(function_id: str, source: str, event_id: str) -> str:
    return hashlib.sha256("\x1f".join((function_id, source, event_id)).encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, path: str | os.PathLike[str], *, expiry_s: float = DEFAULT_EXPIRY_S) -> None:
        self.path = Path(path)
        self.expiry_s = expiry_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = open_shared(self.path, schema=_SCHEMA, schema_ready=_has_claims_table)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def claim(self, key: str, fingerprint: str, lease_s: float | None = None) -> Claim:
        lease = max(lease_s or 0.0, MIN_LEASE_S)
        now = time.time()
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute(
                    "SELECT fingerprint, state, result, until FROM claims WHERE key = ?", (key,)
                ).fetchall()
                if rows and rows[0][3] > now:
                    stored_fingerprint, state, result, _ = rows[0]
                    if stored_fingerprint != fingerprint:
                        claim = Claim("conflict", key)
                    elif state == "done":
                        claim = Claim("replay", key, json.loads(result))
                    else:
                        claim = Claim("in_progress", key)
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO claims(key, fingerprint, state, result, until) "
                        "VALUES (?, ?, 'running', NULL, ?)",
                        (key, fingerprint, now + lease),
                    )
                    claim = Claim("run", key)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return claim

    def complete(self, key: str, result: dict[str, Any]) -> None:
        with self._lock:
            self._connection().execute(
                "UPDATE claims SET state = 'done', result = ?, until = ? WHERE key = ?",
                (json.dumps(result, separators=(",", ":")), time.time() + self.expiry_s, key),
            )

    def release(self, key: str) -> None:
        with self._lock:
            self._connection().execute(
                "DELETE FROM claims WHERE key = ? AND state = 'running'", (key,)
            )

    def purge_expired(self) -> int:
        with self._lock:
            cursor = self._connection().execute(
                "DELETE FROM claims WHERE until <= ?", (time.time(),)
            )
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
