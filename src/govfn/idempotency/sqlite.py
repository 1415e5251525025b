"""The idempotency store in one SQLite file, shared by every worker process of a pod.

The embedded default. Its claims are transactions on the file (`BEGIN IMMEDIATE`), so the
workers of one pod never both run a key; pods do not see each other's file (for that, the
PostgreSQL store). The ledger is another file, so a claim's outcome cannot commit with its
record: `note_outcome` keeps the result and the record's CID beside the claim before the
record is emitted, and a claim taken over from a worker that died asks the ledger whether
the record is there (see `claims`). Each claim carries its holder (a random token), so a
worker whose lease was taken over cannot overwrite the new holder's claim. The async
methods run the query in the caller's thread: a claim takes tens of microseconds, less
than a hand-off to another thread would.
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

from govfn.chronicle.settlement import Settlement
from govfn.databases.sqlite import open_shared
from govfn.idempotency.claims import (
    DEFAULT_EXPIRY_S,
    LEASE_S,
    Claim,
    Heartbeat,
    IdempotencyUnavailable,
    Recorded,
)

log = logging.getLogger("govfn.idempotency")

# Files from before holders gain the two columns (a claim without a holder is nobody's).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    state       TEXT NOT NULL,
    result      TEXT,
    until       REAL NOT NULL
) WITHOUT ROWID;
ALTER TABLE claims ADD COLUMN holder TEXT NOT NULL DEFAULT '';
ALTER TABLE claims ADD COLUMN record TEXT;
"""
_READ = "SELECT fingerprint, state, result, until, holder, record FROM claims WHERE key = ?"
_TAKE = (
    "INSERT OR REPLACE INTO claims(key, fingerprint, state, result, until, holder, record) "
    "VALUES (?, ?, 'running', NULL, ?, ?, NULL)"
)


def _has_holders(conn: sqlite3.Connection) -> bool:
    rows = conn.execute("SELECT 1 FROM pragma_table_info('claims') WHERE name = 'record'")
    return bool(rows.fetchall())


class SqliteIdempotencyStore:
    """Claims in the SQLite file at `path` (created with its folder on first use)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        expiry_s: float = DEFAULT_EXPIRY_S,
        min_lease_s: float = LEASE_S,
    ) -> None:
        self.path = Path(path)
        self.expiry_s = expiry_s
        self.lease_s = min_lease_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._held: dict[str, str] = {}  # key -> holder, for the claims run here
        self._heartbeat = Heartbeat(min_lease_s, self._renew)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = open_shared(self.path, schema=_SCHEMA, schema_ready=_has_holders)
            except (OSError, sqlite3.Error) as exc:
                raise IdempotencyUnavailable(
                    f"cannot open idempotency store {str(self.path)!r}: {exc}"
                ) from exc
            self._conn, self._pid = conn, os.getpid()
            self._held = {}
        return self._conn

    def _failed(self, exc: Exception) -> IdempotencyUnavailable:
        return IdempotencyUnavailable(f"idempotency store {str(self.path)!r}: {exc}")

    def prepare(self) -> None:
        """Create the file and its schema now; the connection is not kept."""
        with self._lock:
            self._connection()
            self._close()

    async def check(self) -> None:
        with self._lock:
            self._connection()

    # -- claims ---------------------------------------------------------------------------

    async def claim(
        self,
        key: str,
        fingerprint: str,
        lease_s: float | None = None,
        *,
        recorded: Recorded | None = None,
    ) -> Claim:
        holder = os.urandom(12).hex()
        try:
            claim, earlier = self._claim(key, fingerprint, holder)
            if earlier is not None:  # a holder that died after noting its outcome
                earlier_holder, record_cid, result = earlier
                done = recorded is not None and await recorded(record_cid)
                claim = self._take_over(key, fingerprint, holder, earlier_holder, result, done)
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        if claim.status == "run":
            self._held[key] = holder
            self._heartbeat.hold(key, holder)
        return claim

    def _claim(
        self, key: str, fingerprint: str, holder: str
    ) -> tuple[Claim, tuple[str, str, str] | None]:
        now = time.time()
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute(_READ, (key,)).fetchall()
                earlier = None
                if rows and rows[0][3] > now:
                    stored_fingerprint, state, result, *_ = rows[0]
                    if stored_fingerprint != fingerprint:
                        claim = Claim("conflict", key)
                    elif state == "done":
                        claim = Claim("replay", key, json.loads(result))
                    else:
                        claim = Claim("in_progress", key)
                elif rows and rows[0][1] == "running" and rows[0][5] and rows[0][0] == fingerprint:
                    claim, earlier = Claim("in_progress", key), (rows[0][4], rows[0][5], rows[0][2])
                else:
                    conn.execute(_TAKE, (key, fingerprint, now + self.lease_s, holder))
                    claim = Claim("run", key)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return claim, earlier

    def _take_over(
        self, key: str, fingerprint: str, holder: str, earlier: str, result: str, done: bool
    ) -> Claim:
        """Settle a lapsed claim whose holder noted an outcome: done when its record is in
        the ledger, otherwise this claim runs. Only while `earlier` still holds it."""
        with self._lock:
            conn = self._connection()
            if done:
                cursor = conn.execute(
                    "UPDATE claims SET state = 'done', until = ? WHERE key = ? AND holder = ?",
                    (time.time() + self.expiry_s, key, earlier),
                )
                claim = Claim("replay", key, json.loads(result))
            else:
                cursor = conn.execute(
                    "UPDATE claims SET holder = ?, result = NULL, record = NULL, until = ? "
                    "WHERE key = ? AND holder = ?",
                    (holder, time.time() + self.lease_s, key, earlier),
                )
                claim = Claim("run", key)
        return claim if cursor.rowcount == 1 else Claim("in_progress", key)

    async def _renew(self, holders: list[str]) -> None:
        with self._lock:
            self._connection().execute(
                "UPDATE claims SET until = ? WHERE state = 'running' AND holder IN "
                f"({', '.join('?' * len(holders))})",
                (time.time() + self.lease_s, *holders),
            )

    # -- outcomes -------------------------------------------------------------------------

    def settlement(self, key: str, result: dict[str, Any]) -> Settlement | None:
        return None  # the ledger is never in this file

    def holds(self, key: str) -> bool:
        return key in self._held

    def settled(self, key: str) -> None:
        self._drop(key)

    def _drop(self, key: str) -> str | None:
        holder = self._held.pop(key, None)
        if holder is not None:
            self._heartbeat.drop(holder)
        return holder

    async def note_outcome(self, key: str, result: dict[str, Any], record_cid: str) -> None:
        holder = self._held.get(key)
        if holder is None:
            return
        text = json.dumps(result, separators=(",", ":"))
        try:
            with self._lock:
                self._connection().execute(
                    "UPDATE claims SET result = ?, record = ? WHERE key = ? AND holder = ?",
                    (text, record_cid, key, holder),
                )
        except (sqlite3.Error, IdempotencyUnavailable) as exc:
            log.error("idempotency store could not note the outcome of %s: %s", key, exc)

    async def complete(self, key: str, result: dict[str, Any]) -> None:
        holder = self._drop(key)
        if holder is None:
            log.warning("idempotency: no claim of %s is held here; nothing written", key)
            return
        text = json.dumps(result, separators=(",", ":"))
        try:
            with self._lock:
                self._connection().execute(
                    "UPDATE claims SET state = 'done', result = ?, until = ? "
                    "WHERE key = ? AND holder = ?",
                    (text, time.time() + self.expiry_s, key, holder),
                )
        except (sqlite3.Error, IdempotencyUnavailable) as exc:
            # The noted outcome stands: a delivery that takes the claim over finds the
            # record in the ledger and answers from it.
            log.error("idempotency store could not record %s: %s", key, exc)

    async def release(self, key: str) -> None:
        holder = self._drop(key)
        if holder is None:
            return
        try:
            with self._lock:
                self._connection().execute(
                    "DELETE FROM claims WHERE key = ? AND holder = ? AND state = 'running'",
                    (key, holder),
                )
        except (sqlite3.Error, IdempotencyUnavailable) as exc:
            log.error("idempotency store could not release %s (free after its lease): %s", key, exc)

    async def flush(self) -> bool:
        return True  # nothing is ever kept: a failed write is logged

    async def purge_expired(self) -> int:
        with self._lock:
            cursor = self._connection().execute(
                "DELETE FROM claims WHERE until <= ? AND (state = 'done' OR record IS NULL)",
                (time.time(),),
            )
            return cursor.rowcount

    async def aclose(self) -> None:
        await self._heartbeat.stop()
        self.close()

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
