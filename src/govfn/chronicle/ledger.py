"""The embedded Chronicle ledger: one append-only SQLite file, tamper-evident.

The default backend (`postgres_ledger.PostgresLedger` is the other; `store.ChronicleLedger`
is what both offer). The whole file is one log.

Each row holds a record's canonical bytes, its CID, and `chain` =
SHA-256(previous chain || RFC 6962 leaf hash), computed inside the INSERT statement so
that the read of the previous row and the write happen under one write lock. The chain
makes any edit, removal or reordering of a row visible; the Merkle tree over the same
leaves gives inclusion proofs; `checkpoints` keep signed-off tree heads (size, root)
that later verification must still reproduce. SQLite triggers refuse UPDATE and DELETE on records.

Durability: WAL journal with `synchronous=NORMAL` by default. A record is committed
before `append` returns; committed records survive the writing process being killed
(SIGKILL included). Surviving power loss needs `synchronous=FULL` (`sync="full"`).

Concurrency: one connection per process (re-opened after fork), one writer at a time
within the process; across processes SQLite's write lock (taken when a write statement
starts) plus a busy timeout.

Speed: a write is one statement and one WAL commit. There is deliberately no index on
`cid`: it would double the pages each commit writes. Lookups by CID (`show`, `proof`)
scan the table; re-delivered records (`append(..., dedupe=True)`) are checked against
the set of stored CIDs, which only recovery paths pay for.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from govfn.chronicle import merkle
from govfn.chronicle.cid import cid_of_canonical
from govfn.chronicle.records import Record
from govfn.chronicle.store import (
    GENESIS,
    InclusionProof,
    LedgerError,
    TreeHead,
    VerifyReport,
    chain_next,
)
from govfn.chronicle.wal import BackgroundCheckpointer
from govfn.sqlite import open_shared

__all__ = ["GENESIS", "InclusionProof", "Ledger", "LedgerError", "VerifyReport", "chain_next"]

_LOCK_WAIT_S = 30.0

# How a new file's WAL switch and schema are written. Under "normal", which promises that
# records survive the process being killed but not power loss, they are not fsynced:
# the page cache survives a kill, and a new ledger holds no record yet (~1 ms of every
# cold start). Under "full" they are, so that no committed record can depend on them.
_SCHEMA_SYNC = {"normal": "OFF", "full": "FULL"}

_INSERT = (
    "INSERT INTO records(cid, type, body, chain) VALUES (?, ?, ?, "
    "govfn_chain((SELECT chain FROM records ORDER BY seq DESC LIMIT 1), ?))"
)

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
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'the Chronicle is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'the Chronicle is append-only'); END;
CREATE TABLE IF NOT EXISTS outbox (
    seq           INTEGER PRIMARY KEY,
    claimed_until REAL    NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0
);
"""

# With an outbox, every record is queued for the sink by the same INSERT statement that
# stores it, so a record is in the ledger and in the outbox, or in neither.
_OUTBOX_ON = """
CREATE TRIGGER IF NOT EXISTS records_to_outbox AFTER INSERT ON records
BEGIN INSERT INTO outbox(seq) VALUES (NEW.seq); END;
"""
_OUTBOX_OFF = "DROP TRIGGER IF EXISTS records_to_outbox;"
_SCHEMA_OBJECTS = (
    "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE name IN "
    "('records', 'checkpoints', 'outbox', 'records_no_update', 'records_no_delete', "
    "'records_to_outbox') ORDER BY name)"
)
_SCHEMA_NAMES = "checkpoints,outbox,records,records_no_delete,records_no_update"


class Ledger:
    """An append-only record store in one SQLite file."""

    def __init__(
        self, path: str | os.PathLike[str], *, sync: str = "normal", outbox: bool = False
    ) -> None:
        if sync not in ("normal", "full"):
            raise ValueError(f"sync must be 'normal' or 'full', got {sync!r}")
        self.path = Path(path)
        self.sync = sync
        self.outbox = outbox
        self.checkpointer = BackgroundCheckpointer(self.path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None  # the connection appends went through
        self._pid = 0

    # -- connection ---------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = open_shared(
                    self.path,
                    schema=_SCHEMA + (_OUTBOX_ON if self.outbox else _OUTBOX_OFF),
                    schema_ready=self._schema_ready,
                    synchronous=_SCHEMA_SYNC[self.sync],
                )
                conn.execute(f"PRAGMA synchronous={self.sync.upper()}")
                conn.create_function("govfn_chain", 2, chain_next, deterministic=True)
                conn.execute("PRAGMA wal_autocheckpoint=0")  # see BackgroundCheckpointer
            except (sqlite3.Error, OSError) as exc:
                raise LedgerError(
                    f"cannot open Chronicle ledger {str(self.path)!r}: {exc}"
                ) from exc
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _schema_ready(self, conn: sqlite3.Connection) -> bool:
        wanted = _SCHEMA_NAMES + (",records_to_outbox" if self.outbox else "")
        return bool(conn.execute(_SCHEMA_OBJECTS).fetchall()[0][0] == wanted)

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
                    stored = {row[0] for row in conn.execute("SELECT cid FROM records")}
                    records = [r for r in records if r.cid not in stored]
                if self._writer is not conn:  # readers keep SQLite's own 30 s busy wait
                    conn.execute("PRAGMA busy_timeout=0")
                    self._writer = conn
                self._write_waiting_for_the_lock(conn, records)
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot write Chronicle ledger: {exc}") from exc
        self.checkpointer.poke()

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
        if len(records) == 1:
            self._insert(conn, records[0])
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for record in records:
                self._insert(conn, record)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _insert(conn: sqlite3.Connection, record: Record) -> None:
        conn.execute(
            _INSERT,
            (record.cid, record.type, record.canonical, merkle.leaf_hash(record.canonical)),
        )

    def checkpoint(self) -> tuple[int, str]:
        """Store the current tree head (size, root) and return it."""
        leaves = [merkle.leaf_hash(body) for _, _, _, body, _ in self._rows()]
        head = merkle.root(leaves).hex()
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO checkpoints(tree_size, root, created_at) VALUES (?, ?, ?)",
                (
                    len(leaves),
                    bytes.fromhex(head),
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                ),
            )
        return len(leaves), head

    def checkpoint_logs(self) -> list[TreeHead]:
        return [TreeHead(None, *self.checkpoint())]

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

    def get(self, cid: str) -> Record | None:
        rows = (
            self._connection()
            .execute("SELECT type, body FROM records WHERE cid = ? ORDER BY seq LIMIT 1", (cid,))
            .fetchall()
        )
        return Record.from_canonical(rows[0][0], bytes(rows[0][1])) if rows else None

    def head(self) -> tuple[int, str]:
        leaves = [merkle.leaf_hash(bytes(body)) for _, _, _, body, _ in self._rows()]
        return len(leaves), merkle.root(leaves).hex()

    def tree_heads(self) -> list[TreeHead]:
        return [TreeHead(None, *self.head())]

    def proof(self, cid: str) -> InclusionProof:
        leaves: list[bytes] = []
        index = -1
        for position, (_, row_cid, _, body, _) in enumerate(self._rows()):
            leaves.append(merkle.leaf_hash(bytes(body)))
            if row_cid == cid:
                index = position
        if index < 0:
            raise KeyError(cid)
        path = merkle.inclusion_proof(index, leaves)
        return InclusionProof(
            cid=cid,
            leaf_index=index,
            tree_size=len(leaves),
            leaf_hash=leaves[index].hex(),
            audit_path=[node.hex() for node in path],
            root=merkle.root(leaves).hex(),
        )

    def verify(self) -> VerifyReport:
        """Recompute every CID, the chain, the tree, and every stored checkpoint."""
        chain = GENESIS
        leaves: list[bytes] = []
        roots_at: dict[int, bytes] = {}
        checkpoints = dict(
            self._connection().execute("SELECT tree_size, root FROM checkpoints").fetchall()
        )
        for expected_seq, (seq, cid, _, body, stored_chain) in enumerate(self._rows(), start=1):
            body = bytes(body)
            if seq != expected_seq:
                return self._bad(leaves, f"record {expected_seq} is missing", seq, cid)
            if cid_of_canonical(body) != cid:
                return self._bad(leaves, "content does not match its CID", seq, cid)
            leaf = merkle.leaf_hash(body)
            chain = chain_next(chain, leaf)
            if chain != bytes(stored_chain):
                return self._bad(
                    leaves, "hash chain broken (altered, removed or reordered)", seq, cid
                )
            leaves.append(leaf)
            if seq in checkpoints:
                roots_at[seq] = merkle.root(leaves)
        for size, stored_root in sorted(checkpoints.items()):
            if size > len(leaves):
                return self._bad(
                    leaves, f"checkpoint at size {size} but only {len(leaves)} records"
                )
            actual = roots_at.get(size, merkle.root(leaves[:size]))
            if actual != bytes(stored_root):
                return self._bad(leaves, f"checkpoint at size {size} no longer matches the tree")
        return VerifyReport(True, len(leaves), merkle.root(leaves).hex())

    @staticmethod
    def _bad(
        leaves: list[bytes], problem: str, seq: int | None = None, cid: str | None = None
    ) -> VerifyReport:
        return VerifyReport(False, len(leaves), merkle.root(leaves).hex(), problem, seq, cid)
