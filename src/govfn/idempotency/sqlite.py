"""The idempotency store in one SQLite file, shared by every worker process of a pod.

The embedded default. Its claims are transactions on the file (`BEGIN IMMEDIATE`), so the
workers of one pod never both run a key; pods do not see each other's file (for that, the
PostgreSQL store). The async methods run the query in the caller's thread: a claim takes
tens of microseconds, less than a hand-off to another thread would.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from govfn.databases.sqlite import open_shared
from govfn.idempotency.claims import DEFAULT_EXPIRY_S, MIN_LEASE_S, Claim, IdempotencyUnavailable

log = logging.getLogger("govfn.idempotency")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    state       TEXT NOT NULL,
    result      TEXT,
    until       REAL NOT NULL
) WITHOUT ROWID;
"""


def _has_claims_table(conn: sqlite3.Connection) -> bool:
    rows = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'claims'").fetchall()
    return bool(rows)


class SqliteIdempotencyStore:
    """Claims in the SQLite file at `path` (created with its folder on first use)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        expiry_s: float = DEFAULT_EXPIRY_S,
        min_lease_s: float = MIN_LEASE_S,
    ) -> None:
        self.path = Path(path)
        self.expiry_s = expiry_s
        self.min_lease_s = min_lease_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = open_shared(self.path, schema=_SCHEMA, schema_ready=_has_claims_table)
            except (OSError, sqlite3.Error) as exc:
                raise IdempotencyUnavailable(
                    f"cannot open idempotency store {str(self.path)!r}: {exc}"
                ) from exc
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def prepare(self) -> None:
        """Create the file and its schema now; the connection is not kept."""
        with self._lock:
            self._connection()
            self._close()

    async def check(self) -> None:
        with self._lock:
            self._connection()

    async def claim(self, key: str, fingerprint: str, lease_s: float | None = None) -> Claim:
        try:
            return self._claim(key, fingerprint, lease_s)
        except sqlite3.Error as exc:
            raise IdempotencyUnavailable(f"idempotency store {str(self.path)!r}: {exc}") from exc

    def _claim(self, key: str, fingerprint: str, lease_s: float | None) -> Claim:
        lease = max(lease_s or 0.0, self.min_lease_s)
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

    async def complete(self, key: str, result: dict[str, Any]) -> None:
        text = json.dumps(result, separators=(",", ":"))
        try:
            with self._lock:
                self._connection().execute(
                    "UPDATE claims SET state = 'done', result = ?, until = ? WHERE key = ?",
                    (text, time.time() + self.expiry_s, key),
                )
        except (sqlite3.Error, IdempotencyUnavailable) as exc:
            # The outcome stands; a redelivery after the lease may run again, and its
            # deterministic reply id lets consumers downstream drop the duplicate.
            log.error("idempotency store could not record %s: %s", key, exc)

    async def release(self, key: str) -> None:
        try:
            with self._lock:
                self._connection().execute(
                    "DELETE FROM claims WHERE key = ? AND state = 'running'", (key,)
                )
        except (sqlite3.Error, IdempotencyUnavailable) as exc:
            log.error("idempotency store could not release %s (free after its lease): %s", key, exc)

    async def flush(self) -> bool:
        return True  # nothing is ever kept: a failed write is logged

    async def purge_expired(self) -> int:
        with self._lock:
            cursor = self._connection().execute(
                "DELETE FROM claims WHERE until <= ?", (time.time(),)
            )
            return cursor.rowcount

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
