"""One log of the PostgreSQL ledger as `log.Log` reads it (a `log.LogStorage`): its rows of
`chronicle.records` (each with its packed tree hashes, `records.tree`), its checkpoints
and its signed checkpoint notes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from govfn.chronicle import tree
from govfn.chronicle.log import Entry
from govfn.chronicle.store import checked_reader

if TYPE_CHECKING:
    import psycopg

STORED_HASHES = "SELECT seq, tree FROM chronicle.records WHERE log_id = %s AND seq = ANY(%s)"
_LOG_SIZE = "SELECT max(seq) FROM chronicle.records WHERE log_id = %s"
# pg_advisory_xact_lock(key, log_id) of those who store a log's checkpoint notes: "gvfn".
_NOTES_LOCK = int.from_bytes(b"gvfn", "big") - (1 << 31)


class Database(Protocol):
    """What a log reads through: the ledger's pooled connections."""

    outbox: bool

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...

    def stream(self, query: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]: ...


class TableLog:
    """One log of the shared tables, by its id."""

    def __init__(self, database: Database, log_id: int) -> None:
        self.database = database
        self.log_id: int | None = log_id
        self._id = log_id

    @contextmanager
    def reading(self) -> Iterator[tuple[int, tree.HashReader]]:
        with self.database.connection() as conn:
            row = conn.execute(_LOG_SIZE, (self._id,)).fetchone()
            size = int(row[0]) if row and row[0] is not None else 0
            yield size, hash_reader(conn, self._id)

    def entries(self) -> Iterator[Entry]:
        query = (
            "SELECT seq, cid, body, chain, tree FROM chronicle.records WHERE log_id = %s "
            "ORDER BY seq"
        )
        for seq, cid, body, chain, hashes in self.database.stream(query, (self._id,)):
            stored = None if hashes is None else bytes(hashes)
            yield Entry(int(seq), cid, bytes(body), bytes(chain), stored)

    def hashes_beyond(self, size: int) -> bool:
        return False  # a record's tree hashes are stored in its own row

    def checkpoints(self) -> dict[int, bytes]:
        with self.database.connection() as conn:
            rows = conn.execute(
                "SELECT tree_size, root FROM chronicle.checkpoints WHERE log_id = %s",
                (self._id,),
            ).fetchall()
        return {int(size): bytes(root) for size, root in rows}

    def store_checkpoint(self, tree_size: int, root: bytes) -> None:
        with self.database.connection() as conn:
            conn.execute(
                "INSERT INTO chronicle.checkpoints (log_id, tree_size, root) "
                "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (self._id, tree_size, root),
            )

    def store_signed_checkpoint(self, tree_size: int, root: bytes, note: str) -> bool:
        """Keep a signed checkpoint note of this log (and its tree head) and, with an
        outbox, queue it for the sink, in one transaction. False if this note is already
        stored, or if a note of a larger tree of this log is (a head read before another
        signer stored a newer one must not follow it: a witness takes only growing trees)."""
        with self.database.connection() as conn, conn.transaction():
            # serialises the signers of this log (appends take no such lock; an advisory
            # lock needs no privilege beyond the serving role's SELECT and INSERT)
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_NOTES_LOCK, self._id))
            row = conn.execute(
                "SELECT max(tree_size) FROM chronicle.checkpoint_notes WHERE log_id = %s",
                (self._id,),
            ).fetchone()
            if row and row[0] is not None and int(row[0]) > tree_size:
                return False
            conn.execute(
                "INSERT INTO chronicle.checkpoints (log_id, tree_size, root) "
                "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (self._id, tree_size, root),
            )
            stored = conn.execute(
                "INSERT INTO chronicle.checkpoint_notes (log_id, tree_size, note) "
                "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
                (self._id, tree_size, note),
            ).fetchone()
            if stored is not None and self.database.outbox:
                conn.execute("INSERT INTO chronicle.note_outbox (id) VALUES (%s)", (stored[0],))
        return stored is not None

    def signed_checkpoints(self) -> list[str]:
        with self.database.connection() as conn:
            rows = conn.execute(
                "SELECT note FROM chronicle.checkpoint_notes WHERE log_id = %s ORDER BY id",
                (self._id,),
            ).fetchall()
        return [str(note) for (note,) in rows]

    def signed_notes(self, lo: int, hi: int, limit: int) -> list[str]:
        """Through the index on (log_id, tree_size)."""
        with self.database.connection() as conn:
            rows = conn.execute(
                "SELECT note FROM chronicle.checkpoint_notes WHERE log_id = %s AND "
                "tree_size >= %s AND tree_size < %s ORDER BY tree_size DESC, id DESC LIMIT %s",
                (self._id, lo, hi, limit),
            ).fetchall()
        return [str(note) for (note,) in rows]

    def bodies(self, start: int, end: int) -> list[bytes]:
        with self.database.connection() as conn:
            rows = conn.execute(
                "SELECT body FROM chronicle.records WHERE log_id = %s AND seq > %s "
                "AND seq <= %s ORDER BY seq",
                (self._id, start, end),
            ).fetchall()
        return [bytes(body) for (body,) in rows]


def hash_reader(conn: psycopg.Connection[Any], log_id: int) -> tree.HashReader:
    """Stored tree hashes of one log by index, from `records.tree` (one indexed read of
    the rows that hold them)."""

    def fetch(seqs: list[int]) -> dict[int, bytes]:
        rows = conn.execute(STORED_HASHES, (log_id, seqs)).fetchall()
        return {int(seq): bytes(hashes) for seq, hashes in rows if hashes is not None}

    return checked_reader(tree.packed_reader(fetch))
