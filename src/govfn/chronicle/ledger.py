"""The embedded Chronicle ledger: one append-only SQLite file, tamper-evident.

The default backend (`postgres_ledger.PostgresLedger` is the other; `store.ChronicleLedger`
is what both offer). The whole file is one log.

Each row holds a record's canonical bytes, its CID, and `chain` =
SHA-256(previous chain || RFC 6962 leaf hash), computed inside the INSERT statement so
that the read of the previous row and the write happen under one write lock. The chain
makes any edit, removal or reordering of a row visible. The RFC 6962 Merkle tree over
the same leaves (a leaf is a record's canonical JSON bytes) is kept as stored subtree
hashes in `merkle_nodes` (layout in `tree.py`; one row per record holding the hashes
its append stored: its leaf hash, then each subtree it completes), written by a trigger
in the statement that appends the record, so that a root, an inclusion proof or a
consistency proof reads O(log n) hashes. `checkpoints` keep tree heads (size, root)
that later verification must still reproduce; `checkpoint_notes` keep signed checkpoints
(C2SP tlog-checkpoint notes), queued in `note_outbox` for the sink like records;
`openlineage_outbox` queues function records for GOVFN_OPENLINEAGE_URL. Whether records
are queued is a setting in `ledger_settings` that only a serving process writes. SQLite
triggers refuse UPDATE and DELETE on records and on their hashes.

Durability: WAL journal with `synchronous=NORMAL` by default. A record is committed
before `append` returns; committed records survive the writing process being killed
(SIGKILL included). Surviving power loss needs `synchronous=FULL` (`sync="full"`).

Concurrency: one connection per process (re-opened after fork), one writer at a time
within the process; across processes SQLite's write lock (taken when a write statement
starts) plus a busy timeout.

Speed: a write is one statement (or one transaction for a batch) and one WAL commit; the
tree hashes cost one more row (64 bytes on average) at the end of one table, computed
from the tree's right edge that the connection keeps (`govfn_tree`). Lookups by CID
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

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from govfn.chronicle import key_runs, lookup_keys, merkle, tree
from govfn.chronicle.cid import cid_of_canonical
from govfn.chronicle.records import Record
from govfn.chronicle.store import (
    GENESIS,
    ConsistencyProof,
    InclusionProof,
    LedgerError,
    TreeHead,
    VerifyReport,
    chain_next,
)
from govfn.chronicle.wal import WAL_SIZE_LIMIT, BackgroundCheckpointer
from govfn.sqlite import open_shared

__all__ = [
    "GENESIS",
    "ConsistencyProof",
    "InclusionProof",
    "Ledger",
    "LedgerError",
    "VerifyReport",
    "chain_next",
]

log = logging.getLogger("govfn.chronicle")

_LOCK_WAIT_S = 30.0

# How a new file's WAL switch and schema are written. Under "normal", which promises that
# records survive the process being killed but not power loss, they are not fsynced:
# the page cache survives a kill, and a new ledger holds no record yet (~1 ms of every
# cold start). Under "full" they are, so that no committed record can depend on them.
_SCHEMA_SYNC = {"normal": "OFF", "full": "FULL"}

# An append goes through the `record_appends` view: its trigger stores the record (with
# the chain computed from the previous row) and files its lookup keys, in one statement.
_INSERT = "INSERT INTO record_appends(cid, type, body, leaf, key) VALUES (?, ?, ?, ?, ?)"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq   INTEGER PRIMARY KEY,
    cid   TEXT    NOT NULL,
    type  TEXT    NOT NULL,
    body  BLOB    NOT NULL,
    chain BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    tree_size  INTEGER PRIMARY KEY,
    root       BLOB    NOT NULL,
    created_at TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS merkle_nodes (
    seq    INTEGER PRIMARY KEY,
    hashes BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint_notes (
    id         INTEGER PRIMARY KEY,
    tree_size  INTEGER NOT NULL,
    note       TEXT    NOT NULL UNIQUE,
    created_at TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS note_outbox (
    id            INTEGER PRIMARY KEY,
    claimed_until REAL    NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER IF NOT EXISTS merkle_nodes_no_update BEFORE UPDATE ON merkle_nodes
BEGIN SELECT RAISE(ABORT, 'the Chronicle is append-only'); END;
CREATE TRIGGER IF NOT EXISTS merkle_nodes_no_delete BEFORE DELETE ON merkle_nodes
BEGIN SELECT RAISE(ABORT, 'the Chronicle is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_to_tree AFTER INSERT ON records
BEGIN INSERT INTO merkle_nodes(seq, hashes) VALUES (NEW.seq, govfn_tree(NEW.seq, NEW.body)); END;
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'the Chronicle is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'the Chronicle is append-only'); END;
CREATE TABLE IF NOT EXISTS outbox (
    seq           INTEGER PRIMARY KEY,
    claimed_until REAL    NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS openlineage_outbox (
    seq           INTEGER PRIMARY KEY,
    claimed_until REAL    NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ledger_settings (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cid_keys (
    key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, seq)
) WITHOUT ROWID;
INSERT OR IGNORE INTO ledger_settings(name, value)
    SELECT 'cid_keys', 1 WHERE NOT EXISTS (SELECT 1 FROM records);
CREATE VIEW IF NOT EXISTS record_appends(cid, type, body, leaf, key) AS
    SELECT cid, type, body, chain, NULL FROM records WHERE 0;
"""
_APPEND_TRIGGER = f"""
CREATE TRIGGER IF NOT EXISTS record_appends_insert INSTEAD OF INSERT ON record_appends
BEGIN
    INSERT INTO records(cid, type, body, chain) VALUES (NEW.cid, NEW.type, NEW.body,
        govfn_chain((SELECT chain FROM records ORDER BY seq DESC LIMIT 1), NEW.leaf));
    {key_runs.FILE_RECENT}
END;
"""
# Ledgers from before the key runs filed each append's key into `cid_keys` directly.
_APPEND_TRIGGER_SQL = (
    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'record_appends_insert'"
)

# Every record is queued for the sink by the same INSERT statement that stores it (so a
# record is in the ledger and in the outbox, or in neither) while the `outbox` setting
# is on. Only a serving process changes it (`Ledger(outbox=...)`): opening the file from
# the CLI changes nothing a serving process relies on.
# The same holds for OpenLineage RunEvents (function records only) and the `openlineage`
# setting, for GOVFN_OPENLINEAGE_URL.
_OUTBOX_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS records_to_outbox AFTER INSERT ON records
WHEN (SELECT value FROM ledger_settings WHERE name = 'outbox')
BEGIN INSERT INTO outbox(seq) VALUES (NEW.seq); END;
"""
_OPENLINEAGE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS records_to_openlineage AFTER INSERT ON records
WHEN NEW.type IN ('FUNCTION_INVOKED', 'FUNCTION_COMPLETED')
    AND (SELECT value FROM ledger_settings WHERE name = 'openlineage')
BEGIN INSERT INTO openlineage_outbox(seq) VALUES (NEW.seq); END;
"""
_SETTING = (
    "INSERT INTO ledger_settings(name, value) VALUES (?, ?) "
    "ON CONFLICT(name) DO UPDATE SET value = excluded.value"
)
_OUTBOX_STATE = (
    "SELECT (SELECT value FROM ledger_settings WHERE name = 'outbox'), "
    "(SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'records_to_outbox'), "
    "(SELECT value FROM ledger_settings WHERE name = 'openlineage')"
)
_OBJECTS = (
    "checkpoint_notes",
    "checkpoints",
    "cid_keys",
    "ledger_settings",
    "merkle_nodes",
    "merkle_nodes_no_delete",
    "merkle_nodes_no_update",
    "note_outbox",
    "openlineage_outbox",
    "outbox",
    "record_appends",
    "record_appends_insert",
    "records",
    "records_no_delete",
    "records_no_update",
    "records_to_openlineage",
    "records_to_outbox",
    "records_to_tree",
    *key_runs.OBJECTS,
)
_SCHEMA_OBJECTS = (
    "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE name IN "
    f"({', '.join(repr(name) for name in _OBJECTS)}) ORDER BY name)"
)
_SCHEMA_NAMES = ",".join(sorted(_OBJECTS))
_KEYS_FILED = "SELECT value FROM ledger_settings WHERE name = 'cid_keys'"
_BY_CID = (
    "SELECT r.seq, r.type, r.body FROM cid_index k JOIN records r ON r.seq = k.seq "
    "WHERE k.key = ? AND r.cid = ? ORDER BY k.seq LIMIT 1"
)
_TREE_STATE = "SELECT (SELECT max(seq) FROM records), (SELECT max(seq) FROM merkle_nodes)"
_INSERT_NODES = "INSERT INTO merkle_nodes(seq, hashes) VALUES (?, ?)"
_BACKFILL_BATCH = 4096
# Filing steps an append may take per this many records it wrote: about what keeps the
# runs merged behind a million-record ledger's appends (a run, then a copy and a delete
# step per level, for every 1,024 keys), so that large batches do not leave it behind.
_RECORDS_PER_STEP = 64


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Ledger:
    """An append-only record store in one SQLite file."""

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
        self._pid = 0
        # Records this process appended since it last found no key filing to do, and
        # whether the last step found some (then every append takes more steps).
        self._unfiled = 0
        self._filing = False

    # -- connection ---------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = open_shared(
                    self.path,
                    schema=_SCHEMA
                    + key_runs.SCHEMA
                    + _APPEND_TRIGGER
                    + _OUTBOX_TRIGGER
                    + _OPENLINEAGE_TRIGGER,
                    schema_ready=self._schema_ready,
                    synchronous=_SCHEMA_SYNC[self.sync],
                )
                conn.execute(f"PRAGMA synchronous={self.sync.upper()}")
                conn.create_function("govfn_chain", 2, chain_next, deterministic=True)
                conn.create_function("govfn_tree", 2, self._tree_hashes_for(conn))
                self._builder = None
                self._settle_outbox(conn)
                self._settle_append_trigger(conn)
                if not conn.execute(_KEYS_FILED).fetchall():  # a ledger from before the keys
                    self._in_transaction(conn, self._file_missing_keys)
                records, hashed = conn.execute(_TREE_STATE).fetchall()[0]
                if records != hashed:  # a ledger from before the stored tree hashes
                    self._in_transaction(conn, self._store_missing_hashes)
                conn.execute("PRAGMA wal_autocheckpoint=0")  # see BackgroundCheckpointer
                conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            except (sqlite3.Error, OSError) as exc:
                raise LedgerError(
                    f"cannot open Chronicle ledger {str(self.path)!r}: {exc}"
                ) from exc
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @staticmethod
    def _schema_ready(conn: sqlite3.Connection) -> bool:
        return bool(conn.execute(_SCHEMA_OBJECTS).fetchall()[0][0] == _SCHEMA_NAMES)

    def _settle_outbox(self, conn: sqlite3.Connection) -> None:
        """Write the outbox setting when this process sets it and the file says otherwise;
        a ledger from before the setting, whose trigger queued every record, keeps
        queueing them (its trigger becomes the one that reads the setting)."""
        stored, trigger_sql, lineage_stored = conn.execute(_OUTBOX_STATE).fetchall()[0]
        old_trigger = trigger_sql is not None and "ledger_settings" not in trigger_sql
        wanted = int(self.outbox) if self.outbox is not None else (1 if old_trigger else None)
        lineage = None if self.openlineage is None else int(self.openlineage)
        outbox_changes = wanted is not None and wanted != stored
        if not (
            old_trigger or outbox_changes or (lineage is not None and lineage != lineage_stored)
        ):
            return

        def settle(conn: sqlite3.Connection) -> int:
            if old_trigger:
                conn.execute("DROP TRIGGER IF EXISTS records_to_outbox")
                conn.execute(_OUTBOX_TRIGGER)
            if wanted is not None:
                conn.execute(_SETTING, ("outbox", wanted))
            if lineage is not None:
                conn.execute(_SETTING, ("openlineage", lineage))
            return 0

        self._in_transaction(conn, settle)

    def _settle_append_trigger(self, conn: sqlite3.Connection) -> None:
        """A ledger from before the key runs gets the append trigger that files keys in
        `recent_keys`; the keys it filed stay in `cid_keys`, which lookups still read."""
        ((trigger_sql,),) = conn.execute(_APPEND_TRIGGER_SQL).fetchall()
        if "recent_keys" in trigger_sql:
            return

        def replace(conn: sqlite3.Connection) -> int:
            conn.execute("DROP TRIGGER IF EXISTS record_appends_insert")
            conn.execute(_APPEND_TRIGGER)
            return 0

        self._in_transaction(conn, replace)

    def file_keys(self) -> None:
        """File every recent lookup key into runs now (appends do it a step at a time as
        they go; tools and tests that want it done at once call this)."""
        with self._lock:
            key_runs.file_all(self._connection())

    def queues_for_sink(self) -> bool:
        """Whether appends are queued in the outbox (the file's setting)."""
        rows = self._connection().execute(_OUTBOX_STATE).fetchall()
        return bool(rows[0][0])

    def prepare(self) -> None:
        """Create the file and its schema now (before forking workers, say), so that the
        first record does not pay for it; the connection is not kept."""
        with self._lock:
            self._connection()
        self.close()

    def close(self) -> None:
        self.checkpointer.stop()
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
        try:
            if len(records) == 1:
                conn.execute(_INSERT, self._row(records[0]))
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_INSERT, [self._row(record) for record in records])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except BaseException:
            self._builder = None  # it may hold leaves that were not committed
            raise

    @staticmethod
    def _row(record: Record) -> tuple[str, str, bytes, bytes, int]:
        return (
            record.cid,
            record.type,
            record.canonical,
            merkle.leaf_hash(record.canonical),
            lookup_keys.lookup_key(record.cid),
        )

    def _tree_hashes_for(self, conn: sqlite3.Connection) -> Callable[[int, bytes], bytes]:
        """`govfn_tree(seq, body)`, run by the `records_to_tree` trigger under the write
        lock: the hashes to store for the record just inserted, from the tree's right edge
        kept in memory (read again from `merkle_nodes` when another process appended)."""

        def tree_hashes(seq: int, body: bytes) -> bytes:
            builder = self._builder
            try:
                if builder is None or builder.size != seq - 1:
                    builder = tree.TreeBuilder.resume(seq - 1, _reader(conn))
                stored = builder.append_packed(merkle.leaf_hash(body))
            except Exception as exc:  # SQLite would only say "user-defined function raised"
                self._tree_error = exc
                raise
            self._builder = builder
            return stored

        return tree_hashes

    def _store_missing_hashes(self, conn: sqlite3.Connection) -> int:
        """Inside a write transaction, store the tree hashes of records that have none (a
        ledger written before `merkle_nodes` existed); return the tree size."""
        records, hashed = (value or 0 for value in conn.execute(_TREE_STATE).fetchall()[0])
        if hashed > records:
            raise LedgerError(f"Chronicle tree hashes cover {hashed} records but {records} exist")
        builder = tree.TreeBuilder.resume(hashed, _reader(conn))
        while hashed < records:
            rows = conn.execute(
                "SELECT seq, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                (hashed, _BACKFILL_BATCH),
            ).fetchall()
            nodes = [
                (seq, builder.append_packed(merkle.leaf_hash(bytes(body)))) for seq, body in rows
            ]
            conn.executemany(_INSERT_NODES, nodes)
            hashed += len(nodes)
        return int(records)

    @staticmethod
    def _file_missing_keys(conn: sqlite3.Connection) -> int:
        """Inside a write transaction, file the key of every record's CID (once, for a
        ledger written before `cid_keys` existed; keys already filed stay as they are)."""
        last = 0
        while True:
            rows = conn.execute(
                "SELECT seq, cid FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, _BACKFILL_BATCH),
            ).fetchall()
            if not rows:
                break
            conn.executemany(
                "INSERT OR IGNORE INTO cid_keys(key, seq) VALUES (?, ?)",
                sorted((lookup_keys.lookup_key(cid), seq) for seq, cid in rows),
            )
            last = rows[-1][0]
        conn.execute("INSERT OR IGNORE INTO ledger_settings(name, value) VALUES ('cid_keys', 1)")
        return last

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
                    done = self._in_transaction(conn, lambda conn: _file_links_once(conn, batch))
                filed += done
                if done < batch:
                    return filed
        finally:
            conn.execute(f"PRAGMA cache_size={int(cache)}")

    def _tree_size(self) -> int:
        """The current tree size, with every record's hashes stored."""
        conn = self._connection()
        records, hashed = conn.execute(_TREE_STATE).fetchall()[0]
        if records == hashed:
            return int(records or 0)
        with self._lock:
            return self._in_transaction(conn, self._store_missing_hashes)

    @staticmethod
    def _in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], int]) -> int:
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write Chronicle ledger: {exc}") from exc
        return result

    def checkpoint(self) -> tuple[int, str]:
        """Store the current tree head (size, root) and return it."""
        size, head = self.head()
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO checkpoints(tree_size, root, created_at) VALUES (?, ?, ?)",
                (size, bytes.fromhex(head), _now()),
            )
        return size, head

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
            return bool(self._in_transaction(self._connection(), store))

    def signed_checkpoints(self) -> list[str]:
        """The signed checkpoint notes stored beside the log, oldest first."""
        rows = self._connection().execute("SELECT note FROM checkpoint_notes ORDER BY id")
        return [note for (note,) in rows.fetchall()]

    def last_signed_size(self) -> int | None:
        rows = self._connection().execute("SELECT max(tree_size) FROM checkpoint_notes")
        size = rows.fetchall()[0][0]
        return None if size is None else int(size)

    def checkpoint_logs(self) -> list[TreeHead]:
        return [TreeHead(None, *self.checkpoint())]

    def logs_to_sign(self) -> list[tuple[str | None, Ledger]]:
        """For `publisher.CheckpointPublisher`: the file's one log, under the origin as given."""
        return [(None, self)]

    # -- reading ------------------------------------------------------------------

    def _rows(self) -> Iterator[tuple[int, str, str, bytes, bytes]]:
        conn = self._connection()
        cursor = conn.execute("SELECT seq, cid, type, body, chain FROM records ORDER BY seq")
        try:
            yield from cursor
        finally:
            cursor.close()  # an unfinished statement would pin a stale read snapshot

    def __len__(self) -> int:
        # fetchall, not fetchone: a statement left unfinished pins a stale read snapshot
        (count,) = self._connection().execute("SELECT count(*) FROM records").fetchall()[0]
        return int(count)

    def records(self) -> Iterator[Record]:
        for _, _cid, record_type, body, _ in self._rows():
            yield Record.from_canonical(record_type, bytes(body))

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

    def head(self) -> tuple[int, str]:
        """(tree size, root hex) of the whole log, from O(log n) stored hashes."""
        size = self._tree_size()
        return size, tree.tree_hash(size, _reader(self._connection())).hex()

    def tree_heads(self) -> list[TreeHead]:
        return [TreeHead(None, *self.head())]

    def root_at(self, size: int) -> bytes:
        """The root of the tree of the first `size` records."""
        if not 0 <= size <= self._tree_size():
            raise ValueError(f"tree size {size} outside the log")
        return tree.tree_hash(size, _reader(self._connection()))

    def leaf_index(self, cid: str) -> int | None:
        """Where a record sits in the log (through its lookup key: O(log n))."""
        rows = self._connection().execute(_BY_CID, (lookup_keys.lookup_key(cid), cid)).fetchall()
        return int(rows[0][0]) - 1 if rows else None

    def proof(self, cid: str, tree_size: int | None = None) -> InclusionProof:
        """RFC 6962 inclusion proof of a record (KeyError if the log does not hold it)."""
        index = self.leaf_index(cid)
        if index is None:
            raise KeyError(cid)
        return self.inclusion_proof(index, tree_size, cid=cid)

    def inclusion_proof(
        self, index: int, tree_size: int | None = None, *, cid: str = ""
    ) -> InclusionProof:
        """RFC 6962 inclusion proof of leaf `index` in the tree of `tree_size` (default: all)."""
        size = self._tree_size() if tree_size is None else tree_size
        if not 0 <= index < size or size > self._tree_size():
            raise ValueError(f"no leaf {index} in a tree of {size}")
        read = _reader(self._connection())
        path = tree.inclusion_proof(index, size, read)
        (leaf,) = read([tree.stored_hash_index(0, index)])
        return InclusionProof(
            cid=cid,
            leaf_index=index,
            tree_size=size,
            leaf_hash=leaf.hex(),
            audit_path=[node.hex() for node in path],
            root=tree.tree_hash(size, read).hex(),
        )

    def consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """RFC 6962 consistency proof from tree size `old_size` to `new_size` (default: all)."""
        current = self._tree_size()
        new = current if new_size is None else new_size
        if not 0 <= old_size <= new <= current:
            raise ValueError(
                f"no consistency proof from tree size {old_size} to {new} "
                f"in a log of {current} records"
            )
        old_root, new_root, proof = tree.roots_and_proof(old_size, new, _reader(self._connection()))
        return ConsistencyProof(
            old_size, new, old_root.hex(), new_root.hex(), [node.hex() for node in proof]
        )

    def verify(self) -> VerifyReport:
        """Recompute every CID, the chain, the tree and its stored hashes, and every stored
        checkpoint. One pass over the records; memory O(log n)."""
        chain = GENESIS
        built = tree.TreeBuilder()
        roots_at: dict[int, bytes] = {}
        conn = self._connection()
        checkpoints = dict(conn.execute("SELECT tree_size, root FROM checkpoints").fetchall())
        stored_hashes = conn.execute("SELECT seq, hashes FROM merkle_nodes ORDER BY seq")
        try:
            for expected_seq, (seq, cid, _, body, stored_chain) in enumerate(self._rows(), start=1):
                body = bytes(body)
                if seq != expected_seq:
                    return self._bad(built, f"record {expected_seq} is missing", seq, cid)
                if cid_of_canonical(body) != cid:
                    return self._bad(built, "content does not match its CID", seq, cid)
                leaf = merkle.leaf_hash(body)
                chain = chain_next(chain, leaf)
                if chain != bytes(stored_chain):
                    return self._bad(
                        built, "hash chain broken (altered, removed or reordered)", seq, cid
                    )
                expected = b"".join(hash_ for _, hash_ in built.append(leaf))
                row = stored_hashes.fetchone()
                if row is not None and (row[0] != seq or bytes(row[1]) != expected):
                    return self._bad(
                        built,
                        "its stored Merkle tree hashes do not match the records "
                        "(proofs from them would not hold)",
                        seq,
                        cid,
                    )
                if seq in checkpoints:
                    roots_at[seq] = built.root()
            hashes_beyond = stored_hashes.fetchone() is not None
        finally:
            stored_hashes.close()
        for size, stored_root in sorted(checkpoints.items()):
            if size > built.size:
                return self._bad(built, f"checkpoint at size {size} but only {built.size} records")
            actual = roots_at.get(size, merkle.EMPTY_ROOT)
            if actual != bytes(stored_root):
                return self._bad(built, f"checkpoint at size {size} no longer matches the tree")
        if hashes_beyond:
            return self._bad(
                built, f"records after record {built.size} are missing (their hashes are stored)"
            )
        return VerifyReport(True, built.size, built.root().hex())

    @staticmethod
    def _bad(
        built: tree.TreeBuilder, problem: str, seq: int | None = None, cid: str | None = None
    ) -> VerifyReport:
        return VerifyReport(False, built.size, built.root().hex(), problem, seq, cid)

    # -- tlog-tiles reads (`tiles.py`) -----------------------------------------------------

    def audited_logs(self) -> list[tuple[str | None, Ledger]]:
        """The logs served as tlog-tiles: the file's one log (named None)."""
        return [(None, self)]

    def stored_hashes(self, indexes: Sequence[int]) -> Sequence[bytes]:
        """Stored tree hashes by index (a `tree.HashReader`)."""
        return _reader(self._connection())(indexes)

    def signed_notes(self, lo: int, hi: int, limit: int) -> list[str]:
        """Up to `limit` signed checkpoint notes of tree sizes in [lo, hi), the newest first
        (notes are stored in the order of their sizes: a scan back from the last stops at
        the first that matches)."""
        rows = self._connection().execute(
            "SELECT note FROM checkpoint_notes WHERE tree_size >= ? AND tree_size < ? "
            "ORDER BY id DESC LIMIT ?",
            (lo, hi, limit),
        )
        return [note for (note,) in rows.fetchall()]

    def entries(self, start: int, end: int) -> list[bytes]:
        """The canonical bytes of the records at leaf indexes [start, end), in order."""
        rows = self._connection().execute(
            "SELECT body FROM records WHERE seq > ? AND seq <= ? ORDER BY seq", (start, end)
        )
        return [bytes(body) for (body,) in rows.fetchall()]


_LINKS_FILED = "SELECT value FROM ledger_settings WHERE name = 'links_through'"


def _file_links_once(conn: sqlite3.Connection, batch: int) -> int:
    """Inside a write transaction, file the links of up to `batch` records past the
    `links_through` mark, sorted by key (neighbouring index pages), and move the mark."""
    through = conn.execute(_LINKS_FILED).fetchall()
    last = int(through[0][0]) if through else 0
    rows = conn.execute(
        "SELECT seq, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?", (last, batch)
    ).fetchall()
    if not rows:
        return 0
    entries = sorted(
        (key, seq) for seq, body in rows for key in lookup_keys.link_keys(_payload(bytes(body)))
    )
    conn.executemany("INSERT OR IGNORE INTO cid_keys(key, seq) VALUES (?, ?)", entries)
    conn.execute(
        "INSERT INTO ledger_settings(name, value) VALUES ('links_through', ?) "
        "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        (rows[-1][0],),
    )
    return len(rows)


def _payload(body: bytes) -> dict[str, object]:
    payload = json.loads(body)
    return payload if isinstance(payload, dict) else {}


def _reader(conn: sqlite3.Connection) -> tree.HashReader:
    """Stored tree hashes by index, from `merkle_nodes` (packed, one row per record)."""

    def fetch(seqs: list[int]) -> dict[int, bytes]:
        rows: dict[int, bytes] = {}
        for start in range(0, len(seqs), 500):
            chunk = seqs[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT seq, hashes FROM merkle_nodes WHERE seq IN ({marks})"
            rows.update(conn.execute(query, chunk).fetchall())
        return rows

    read = tree.packed_reader(fetch)

    def read_or_fail(indexes: Sequence[int]) -> Sequence[bytes]:
        try:
            return read(indexes)
        except KeyError as exc:
            raise LedgerError(f"Chronicle ledger: {exc.args[0]}") from None

    return read_or_fail
