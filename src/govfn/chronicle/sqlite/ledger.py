"""The embedded Chronicle ledger: one append-only SQLite file, tamper-evident; the whole
file is one log (`chronicle.Chronicle`; `postgres.PostgresLedger` is the other backend).

Each row holds a record's canonical bytes, its CID, and `chain` =
SHA-256(previous chain || RFC 6962 leaf hash), computed inside the INSERT statement so
that the read of the previous row and the write happen under one write lock; the tree
hashes (`merkle_nodes`) are written by a trigger of the same statement. The tables, and
how an older file is brought up to them, are in `schema.py`; the log as `log.Log` reads
it (proofs, verification, checkpoints) in `storage.py`.

Durability: WAL journal with `synchronous=NORMAL` by default. A record is committed
before `append` returns; committed records survive the writing process being killed
(SIGKILL included). Surviving power loss needs `synchronous=FULL` (`sync="full"`).

Concurrency: one connection per process (re-opened after fork), one writer at a time
within the process; across processes SQLite's write lock (taken when a write statement
starts) plus a busy timeout.

Speed: a write of up to 64 records is one statement (a larger batch one transaction) and
one WAL commit; the tree hashes cost one more row (64 bytes on average) at the end of one
table, computed from the tree's right edge that the connection keeps (`govfn_tree`), from
the leaf hashes the append computed for the chain. Lookups by CID
(`show`, `proof`, re-delivered records) go through `cid_index`: the key of a record's CID
(`lookup_keys.py`, 16 bytes an entry) is put at the end of `recent_keys` by the statement
that appends it, and filed in sorted runs a step at a time after later commits
(`key_runs.py`), so that a commit writes one page of keys rather than one per record. A
ledger from before the keys has them filed once, in `cid_keys`, when it is first opened;
one from before the runs keeps the keys it filed there. The keys of the CIDs a record
links to (lineage hops) are filed in `cid_keys` in bulk when lineage is asked for
(`file_links`), not by the append.
"""

from __future__ import annotations

import collections
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from govfn.chronicle import lookup_keys, merkle, tree
from govfn.chronicle.chronicle import OneLogChronicle
from govfn.chronicle.client import LedgerChronicle
from govfn.chronicle.log import Log
from govfn.chronicle.records import Record
from govfn.chronicle.sqlite import forks, key_runs, schema
from govfn.chronicle.sqlite.schema import hash_reader as _reader
from govfn.chronicle.sqlite.storage import FileLog
from govfn.chronicle.sqlite.wal import WAL_SIZE_LIMIT, BackgroundCheckpointer
from govfn.chronicle.store import LedgerError, chain_next
from govfn.databases.sqlite import open_shared

__all__ = ["Ledger", "LedgerError"]

log = logging.getLogger("govfn.chronicle")

_LOCK_WAIT_S = 30.0

# An append goes through the `record_appends` view: its trigger stores the record (with
# the chain computed from the previous row) and files its lookup keys. A batch of up to
# `_ROWS_PER_STATEMENT` records is one multi-row INSERT: one statement, so one implicit
# transaction, with no BEGIN and COMMIT statements around it.
_ROWS_PER_STATEMENT = 64
_INSERTS = [
    "INSERT INTO record_appends(cid, type, body, leaf, key) VALUES "
    + ", ".join(["(?, ?, ?, ?, ?)"] * rows)
    for rows in range(1, _ROWS_PER_STATEMENT + 1)
]

_BY_CID = (
    "SELECT r.seq, r.type, r.body FROM cid_index k JOIN records r ON r.seq = k.seq "
    "WHERE k.key = ? AND r.cid = ? ORDER BY k.seq LIMIT 1"
)
# Filing steps an append may take per this many records it wrote: about what keeps the
# runs merged behind a million-record ledger's appends (a run, then a copy and a delete
# step per level, for every 1,024 keys), so that large batches do not leave it behind.
_RECORDS_PER_STEP = 64


class Ledger(OneLogChronicle):
    """An append-only record store in one SQLite file: one log."""

    finds_by_name = True  # `records_naming`, through the lookup keys

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sync: str = "normal",
        outbox: bool | None = None,
        openlineage: bool | None = None,
    ) -> None:
        """`outbox` (`openlineage`): True or False sets whether appends are queued for
        the sink (for the OpenLineage endpoint); a serving process says so, from K_SINK
        (GOVFN_OPENLINEAGE_URL). None, for any other reader or writer, leaves the
        file's setting as it is."""
        if sync not in ("normal", "full"):
            raise ValueError(f"sync must be 'normal' or 'full', got {sync!r}")
        self.path = Path(path)
        self.where = f"ledger {str(self.path)!r}"
        self.sync = sync
        self.outbox = outbox
        self.openlineage = openlineage
        self.checkpointer = BackgroundCheckpointer(self.path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None  # the connection appends went through
        # The tree's right edge after this connection's last append: the next append
        # starts from it unless another process appended in between.
        self._builder: tree.TreeBuilder | None = None
        self._tree_error: Exception | None = None
        # (body, leaf hash) of the records the statement under way appends, in order.
        self._leaves: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self._pid = 0
        # Records this process appended since it last found no key filing to do, and
        # whether the last step found some (then every append takes more steps).
        self._unfiled = 0
        self._filing = False
        self.the_log = Log(FileLog(self._connection, self._tree_size, self._lock))

    # -- connection ---------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = open_shared(
                    self.path,
                    schema=schema.SCHEMA,
                    schema_ready=schema.schema_ready,
                    synchronous=schema.SCHEMA_SYNC[self.sync],
                )
                conn.execute(f"PRAGMA synchronous={self.sync.upper()}")
                conn.create_function("govfn_chain", 2, chain_next, deterministic=True)
                conn.create_function("govfn_tree", 2, self._tree_hashes_for(conn))
                self._builder = None
                schema.settle_outbox(conn, self.outbox, self.openlineage)
                schema.settle_append_trigger(conn)
                if not conn.execute(schema.KEYS_FILED).fetchall():  # a ledger before the keys
                    schema.in_transaction(conn, schema.file_missing_keys)
                records, hashed = conn.execute(schema.TREE_STATE).fetchall()[0]
                if records != hashed:  # a ledger from before the stored tree hashes
                    schema.in_transaction(conn, schema.store_missing_hashes)
                conn.execute("PRAGMA wal_autocheckpoint=0")  # see BackgroundCheckpointer
                conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            except (sqlite3.Error, OSError) as exc:
                raise LedgerError(
                    f"cannot open Chronicle ledger {str(self.path)!r}: {exc}"
                ) from exc
            self._conn, self._pid = conn, os.getpid()
            forks.closed_before_fork(self)
        return self._conn

    def file_keys(self) -> None:
        """File every recent lookup key into runs now (appends do it a step at a time as
        they go; tools and tests that want it done at once call this)."""
        with self._lock:
            key_runs.file_all(self._connection())

    def queues_for_sink(self) -> bool:
        """Whether appends are queued in the outbox (the file's setting)."""
        rows = self._connection().execute(schema.OUTBOX_STATE).fetchall()
        return bool(rows[0][0])

    def init(self) -> str:
        self.prepare()
        return f"Chronicle ledger {str(self.path)!r} ready"

    def require(self) -> None:
        if not self.path.exists():
            raise LedgerError(f"no Chronicle ledger at {str(self.path)!r}")

    def prepare(self) -> None:
        """Create the file and its schema now, so that the first record does not pay for
        it; the connection is kept for the appends (closed before a fork: `forks`)."""
        with self._lock:
            self._connection()

    def close(self) -> None:
        self.checkpointer.stop()
        self.close_before_fork()

    def close_before_fork(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def client(self) -> LedgerChronicle:
        return LedgerChronicle(self)

    # -- writing ------------------------------------------------------------------

    def append(self, records: Sequence[Record], *, dedupe: bool = False) -> None:
        """Commit records in order, atomically. With `dedupe`, CIDs already stored are skipped."""
        if not records:
            return
        with self._lock:
            conn = self._connection()
            try:
                if dedupe:
                    records = [r for r in records if not self._holds(conn, r.cid)]
                if self._writer is not conn:  # readers keep SQLite's own 30 s busy wait
                    conn.execute("PRAGMA busy_timeout=0")
                    self._writer = conn
                self._write_waiting_for_the_lock(conn, records)
            except sqlite3.Error as exc:
                problem, self._tree_error = self._tree_error or exc, None
                raise LedgerError(f"cannot write Chronicle ledger: {problem}") from exc
            self._unfiled += len(records)
            if self._filing or self._unfiled >= key_runs.RUN_SIZE:
                self._file_steps(conn, 1 + len(records) // _RECORDS_PER_STEP)
        self.checkpointer.poke()

    def _file_steps(self, conn: sqlite3.Connection, steps: int) -> None:
        """Up to `steps` steps of filing lookup keys (`key_runs`), after a commit: the
        records are committed already, so a step that fails is only retried later."""
        try:
            for _ in range(steps):
                self._filing = key_runs.file_step(conn)
                if not self._filing:
                    break
        except sqlite3.Error as exc:
            log.warning("filing the Chronicle's lookup keys failed (retried later): %s", exc)
            self._filing = False
        if not self._filing:
            self._unfiled = 0

    def _write_waiting_for_the_lock(
        self, conn: sqlite3.Connection, records: Sequence[Record]
    ) -> None:
        """Write, retrying while another process holds the write lock. SQLite's own busy
        handler sleeps at least 1 ms per try; a lock held for one commit (~20 µs) is better
        waited for in steps from 50 µs. Gives up after `_LOCK_WAIT_S`."""
        deadline = time.monotonic() + _LOCK_WAIT_S
        delay = 50e-6
        while True:
            try:
                self._write(conn, records)
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.002)

    def _write(self, conn: sqlite3.Connection, records: Sequence[Record]) -> None:
        if not records:  # all of them stored already (`dedupe`)
            return
        leaves = [merkle.leaf_hash(record.canonical) for record in records]
        # `govfn_tree` takes each leaf hash from here rather than hash the body again.
        self._leaves = collections.deque(zip((r.canonical for r in records), leaves, strict=True))
        try:
            if len(records) <= _ROWS_PER_STATEMENT:
                conn.execute(_INSERTS[len(records) - 1], _values(records, leaves))
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(records), _ROWS_PER_STATEMENT):
                    chunk = records[start : start + _ROWS_PER_STATEMENT]
                    chunk_leaves = leaves[start : start + _ROWS_PER_STATEMENT]
                    conn.execute(_INSERTS[len(chunk) - 1], _values(chunk, chunk_leaves))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except BaseException:
            self._builder = None  # it may hold leaves that were not committed
            raise
        finally:
            self._leaves.clear()

    def _tree_hashes_for(self, conn: sqlite3.Connection) -> Callable[[int, bytes], bytes]:
        """`govfn_tree(seq, body)`, run by the `records_to_tree` trigger under the write
        lock: the hashes to store for the record just inserted, from the tree's right edge
        kept in memory (read again from `merkle_nodes` when another process appended)."""

        def tree_hashes(seq: int, body: bytes) -> bytes:
            builder, leaves = self._builder, self._leaves
            try:
                if builder is None or builder.size != seq - 1:
                    builder = tree.TreeBuilder.resume(seq - 1, _reader(conn))
                if leaves and leaves[0][0] == body:
                    leaf = leaves.popleft()[1]
                else:
                    leaf = merkle.leaf_hash(body)
                stored = builder.append_packed(leaf)
            except Exception as exc:  # SQLite would only say "user-defined function raised"
                self._tree_error = exc
                raise
            self._builder = builder
            return stored

        return tree_hashes

    def file_links(self, batch: int = 8192) -> int:
        """File the lineage links (`lookup_keys.LINKS`) of the records appended since
        they were last filed, `batch` records per transaction (appends wait for one
        batch at most); return how many records were filed. The keys are random, so a
        batch rewrites index pages all over: a page cache of up to 64 MB while filing
        keeps each page written about once per batch."""
        filed = 0
        conn = self._connection()
        (cache,) = conn.execute("PRAGMA cache_size").fetchall()[0]
        conn.execute(f"PRAGMA cache_size={min(int(cache), -65536)}")
        try:
            while True:
                with self._lock:
                    done = schema.in_transaction(
                        conn, lambda conn: schema.file_links_once(conn, batch)
                    )
                filed += done
                if done < batch:
                    return filed
        finally:
            conn.execute(f"PRAGMA cache_size={int(cache)}")

    def _tree_size(self) -> int:
        """The current tree size, with every record's hashes stored."""
        conn = self._connection()
        records, hashed = conn.execute(schema.TREE_STATE).fetchall()[0]
        if records == hashed:
            return int(records or 0)
        with self._lock:
            return schema.in_transaction(conn, schema.store_missing_hashes)

    # -- the file's one log (`chronicle.OneLogChronicle`) ---------------------------------

    def leaf_index(self, cid: str) -> int | None:
        """Where a record sits in the log (through its lookup key: O(log n))."""
        rows = self._connection().execute(_BY_CID, (lookup_keys.lookup_key(cid), cid)).fetchall()
        return int(rows[0][0]) - 1 if rows else None

    # -- reading ------------------------------------------------------------------

    def __len__(self) -> int:
        # fetchall, not fetchone: a statement left unfinished pins a stale read snapshot
        (count,) = self._connection().execute("SELECT count(*) FROM records").fetchall()[0]
        return int(count)

    def records(self) -> Iterator[Record]:
        cursor = self._connection().execute("SELECT type, body FROM records ORDER BY seq")
        try:
            for record_type, body in cursor:
                yield Record.from_canonical(record_type, bytes(body))
        finally:
            cursor.close()  # an unfinished statement would pin a stale read snapshot

    @staticmethod
    def _holds(conn: sqlite3.Connection, cid: str) -> bool:
        return bool(conn.execute(_BY_CID, (lookup_keys.lookup_key(cid), cid)).fetchall())

    def get(self, cid: str) -> Record | None:
        """The record with this CID (through its lookup key: O(log n))."""
        rows = self._connection().execute(_BY_CID, (lookup_keys.lookup_key(cid), cid)).fetchall()
        return Record.from_canonical(rows[0][1], bytes(rows[0][2])) if rows else None

    def records_naming(self, text: str, limit: int) -> list[tuple[int, Record]]:
        """Up to `limit` records with their positions, oldest first, whose CID is `text`
        or that name it in one of their lineage links (`lookup_keys.LINKS`, as far as
        `file_links` filed them); through the lookup keys, so keys that collide may bring
        others, which the caller's comparison drops."""
        rows = (
            self._connection()
            .execute(
                "SELECT r.seq, r.type, r.body FROM cid_index k JOIN records r ON r.seq = k.seq "
                "WHERE k.key = ? ORDER BY k.seq LIMIT ?",
                (lookup_keys.lookup_key(text), limit),
            )
            .fetchall()
        )
        return [
            (seq - 1, Record.from_canonical(record_type, bytes(body)))
            for seq, record_type, body in rows
        ]


def _values(records: Sequence[Record], leaves: Sequence[bytes]) -> list[object]:
    """The parameters of a multi-row INSERT into `record_appends`, row after row."""
    values: list[object] = []
    for record, leaf in zip(records, leaves, strict=True):
        key = lookup_keys.lookup_key(record.cid)
        values += (record.cid, record.type, record.canonical, leaf, key)
    return values
