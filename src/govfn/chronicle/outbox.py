"""The K_SINK outbox as the sender sees it: claim due records, mark them sent, or release them.

`SinkSender` works with any `OutboxQueue`: `SqliteOutbox` here (the `outbox` and
`note_outbox` tables of the SQLite ledger file, or another queue table of it such as
`openlineage_outbox`, without notes) or `postgres.outbox.PostgresOutbox` (shared by
every pod). A claim carries a lease, so two senders never post the same
record at the same time, and a record claimed by a process that died is claimed again
once its lease ends.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol


class Claimed(NamedTuple):
    """A claimed record: its outbox key, CID, type and canonical body."""

    key: Hashable
    cid: str
    type: str
    body: bytes


class ClaimedNote(NamedTuple):
    """A claimed signed checkpoint note: its outbox key and its text as UTF-8."""

    key: Hashable
    body: bytes


class OutboxQueue(Protocol):
    def claim(self, batch: int, lease_s: float) -> list[Claimed]:
        """Up to `batch` due records, oldest first, each leased for `lease_s`."""

    def sent(self, key: Hashable) -> None:
        """The sink accepted the record: remove it from the outbox."""

    def release(self, keys: Sequence[Hashable], due_in_s: float) -> None:
        """Unclaim records, due again after `due_in_s`."""

    def claim_notes(self, batch: int, lease_s: float) -> list[ClaimedNote]:
        """Up to `batch` due signed checkpoint notes, oldest first (sent after the records)."""

    def note_sent(self, key: Hashable) -> None: ...

    def release_notes(self, keys: Sequence[Hashable], due_in_s: float) -> None: ...

    def depth(self) -> int:
        """How many records and notes wait; -1 when the outbox cannot be read."""

    def close(self) -> None: ...


class SqliteOutbox:
    """The `outbox` table of a SQLite ledger file (keys are record seqs), or another
    queue table of the same shape (`table`; `notes=False`: it queues no notes)."""

    def __init__(self, ledger_path: Path, table: str = "outbox", *, notes: bool = True) -> None:
        if table not in ("outbox", "openlineage_outbox"):
            raise ValueError(f"no outbox table {table!r}")
        self.ledger_path = ledger_path
        self.table = table
        self.notes = notes
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._lock = threading.Lock()  # the sender thread and /metrics share the connection

    def _db(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self._conn = sqlite3.connect(
                self.ledger_path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._pid = os.getpid()
        return self._conn

    def claim(self, batch: int, lease_s: float) -> list[Claimed]:
        now = time.time()
        with self._lock:
            conn = self._db()
            claimed = conn.execute(
                f"UPDATE {self.table} SET claimed_until = ?, attempts = attempts + 1 "
                f"WHERE seq IN (SELECT seq FROM {self.table} WHERE claimed_until < ? "
                "ORDER BY seq LIMIT ?) RETURNING seq",
                (now + lease_s, now, batch),
            ).fetchall()
            if not claimed:
                return []
            marks = ",".join("?" * len(claimed))
            rows = conn.execute(
                f"SELECT seq, cid, type, body FROM records WHERE seq IN ({marks}) ORDER BY seq",
                [row[0] for row in claimed],
            ).fetchall()
        return [Claimed(seq, cid, kind, bytes(body)) for seq, cid, kind, body in rows]

    def sent(self, key: Hashable) -> None:
        with self._lock:
            self._db().execute(f"DELETE FROM {self.table} WHERE seq = ?", (key,))

    def release(self, keys: Sequence[Hashable], due_in_s: float) -> None:
        marks = ",".join("?" * len(keys))
        with self._lock:
            self._db().execute(
                f"UPDATE {self.table} SET claimed_until = ? WHERE seq IN ({marks})",
                [time.time() + due_in_s, *keys],
            )

    def claim_notes(self, batch: int, lease_s: float) -> list[ClaimedNote]:
        if not self.notes:
            return []
        now = time.time()
        with self._lock:
            conn = self._db()
            claimed = conn.execute(
                "UPDATE note_outbox SET claimed_until = ?, attempts = attempts + 1 WHERE id IN "
                "(SELECT id FROM note_outbox WHERE claimed_until < ? ORDER BY id LIMIT ?) "
                "RETURNING id",
                (now + lease_s, now, batch),
            ).fetchall()
            marks = ",".join("?" * len(claimed))
            notes = conn.execute(
                f"SELECT id, note FROM checkpoint_notes WHERE id IN ({marks}) ORDER BY id",
                [row[0] for row in claimed],
            ).fetchall()
        return [ClaimedNote(note_id, note.encode("utf-8")) for note_id, note in notes]

    def note_sent(self, key: Hashable) -> None:
        with self._lock:
            self._db().execute("DELETE FROM note_outbox WHERE id = ?", (key,))

    def release_notes(self, keys: Sequence[Hashable], due_in_s: float) -> None:
        marks = ",".join("?" * len(keys))
        with self._lock:
            self._db().execute(
                f"UPDATE note_outbox SET claimed_until = ? WHERE id IN ({marks})",
                [time.time() + due_in_s, *keys],
            )

    def depth(self) -> int:
        try:
            with self._lock:
                rows = (
                    self._db()
                    .execute(
                        f"SELECT (SELECT count(*) FROM {self.table}) + "
                        f"(SELECT count(*) FROM note_outbox WHERE {int(self.notes)})"
                    )
                    .fetchall()
                )
            return int(rows[0][0])
        except sqlite3.Error:
            return -1

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
