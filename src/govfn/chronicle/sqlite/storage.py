"""The one log of a SQLite ledger file, as `log.Log` reads it (a `log.LogStorage`): its
records, the tree hashes of `merkle_nodes`, and its checkpoints."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from govfn.chronicle import tree
from govfn.chronicle.log import Entry
from govfn.chronicle.sqlite.schema import hash_reader, in_transaction

_ENTRIES = (
    "SELECT r.seq, r.cid, r.body, r.chain, m.hashes FROM records r "
    "LEFT JOIN merkle_nodes m ON m.seq = r.seq ORDER BY r.seq"
)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FileLog:
    """The file's log, read through the ledger's connection; `tree_size` stores the hashes
    of records that have none first (a ledger from before them)."""

    log_id: int | None = None

    def __init__(
        self,
        connection: Callable[[], sqlite3.Connection],
        tree_size: Callable[[], int],
        lock: threading.Lock,
    ) -> None:
        self._connection = connection
        self._tree_size = tree_size
        self._lock = lock

    @contextmanager
    def reading(self) -> Iterator[tuple[int, tree.HashReader]]:
        size = self._tree_size()
        yield size, hash_reader(self._connection())

    def entries(self) -> Iterator[Entry]:
        cursor = self._connection().execute(_ENTRIES)
        try:
            for seq, cid, body, chain, hashes in cursor:
                stored = None if hashes is None else bytes(hashes)
                yield Entry(seq, cid, bytes(body), bytes(chain), stored)
        finally:
            cursor.close()  # an unfinished statement would pin a stale read snapshot

    def hashes_beyond(self, size: int) -> bool:
        query = "SELECT EXISTS (SELECT 1 FROM merkle_nodes WHERE seq > ?)"
        return bool(self._connection().execute(query, (size,)).fetchall()[0][0])

    def checkpoints(self) -> dict[int, bytes]:
        rows = self._connection().execute("SELECT tree_size, root FROM checkpoints").fetchall()
        return {int(size): bytes(root) for size, root in rows}

    def store_checkpoint(self, tree_size: int, root: bytes) -> None:
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO checkpoints(tree_size, root, created_at) VALUES (?, ?, ?)",
                (tree_size, root, _now()),
            )

    def store_signed_checkpoint(self, tree_size: int, root: bytes, note: str) -> bool:
        """Keep a signed checkpoint note (and its tree head) and, while the ledger queues
        records for the sink, queue it too, in one transaction (whoever signed it: a
        serving process or the CLI). False if this very note is already stored, or a note
        of a larger tree is: a head read before another signer (another worker of the pod)
        stored a newer one must not land after it, since a witness takes only trees that
        grow."""

        def store(conn: sqlite3.Connection) -> int:
            newest = conn.execute("SELECT max(tree_size) FROM checkpoint_notes")
            (largest,) = newest.fetchall()[0]
            if largest is not None and int(largest) > tree_size:
                return 0  # nothing written: the transaction commits empty
            conn.execute(
                "INSERT OR IGNORE INTO checkpoints(tree_size, root, created_at) VALUES (?, ?, ?)",
                (tree_size, root, _now()),
            )
            stored = conn.execute(
                "INSERT OR IGNORE INTO checkpoint_notes(tree_size, note, created_at) "
                "VALUES (?, ?, ?) RETURNING id",
                (tree_size, note, _now()),
            ).fetchall()
            if stored:
                conn.execute(
                    "INSERT INTO note_outbox(id) SELECT ? WHERE (SELECT value FROM "
                    "ledger_settings WHERE name = 'outbox')",
                    (stored[0][0],),
                )
            return len(stored)

        with self._lock:
            return bool(in_transaction(self._connection(), store))

    def signed_checkpoints(self) -> list[str]:
        rows = self._connection().execute("SELECT note FROM checkpoint_notes ORDER BY id")
        return [note for (note,) in rows.fetchall()]
