"""The Chronicle ledger on PostgreSQL: shared tables, one log per writer.

Every writer (a process, or one commit lane of its event loop: see below) registers a
log of its own (a row of `chronicle.logs`) and is that log's only writer: it numbers the
log's records 1, 2, 3... and chains them with SHA-256(previous chain || RFC 6962 leaf
hash) in memory, so an append is one INSERT of rows that are already complete. No append
reads or locks anything another writer writes, so pods never wait on each other; each
log has its own hash chain and Merkle tree (`verify` checks every log, `proof` names its
log, checkpoints are kept per log). Records and CIDs are the same as on SQLite: the
canonical bytes are stored unchanged.

An append whose outcome is unknown (the connection broke before the commit was
acknowledged) puts the log in doubt: the next append re-reads the log's head from the
database and skips records the in-doubt commit did store, so nothing is stored twice
and the chain never forks.

The serving path appends through `append_async` (psycopg's async API on the caller's
event loop; `client.AsyncLedgerChronicle` gathers concurrent records into one commit, with
up to `commit_lanes` commits in flight, each lane with its own connection and log).
Reads, the CLI and synchronous appends share a small psycopg_pool connection pool. With
`outbox`, every appended record is queued for K_SINK in the same statement
(`postgres_outbox` sends it).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from govfn.chronicle import merkle, tree
from govfn.chronicle.cid import cid_of_canonical
from govfn.chronicle.postgres.schema import ensure_schema, ensure_schema_async
from govfn.chronicle.records import Record
from govfn.chronicle.settlement import Settlement
from govfn.chronicle.store import (
    GENESIS,
    ConsistencyProof,
    InclusionProof,
    LedgerError,
    TreeHead,
    VerifyReport,
    chain_next,
)
from govfn.postgres import describe_database

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 10.0
COMMIT_TIMEOUT_S = 30.0

# A database that vanishes without closing the connection (a partition, a node lost) must
# fail an append within seconds, not after the kernel's two-hour keepalive; a URI that
# sets any of these keeps its own value.
_LIVENESS = {
    "connect_timeout": str(CONNECT_TIMEOUT_S),
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "3",
    "keepalives_count": "3",
    "tcp_user_timeout": "15000",
}

# One statement per append, whatever its size. Up to `_VALUES_ROWS` records travel as
# the rows of one VALUES list (a statement per row count, each prepared once per
# connection): their parameters are scalars, which psycopg's C dumpers write. A larger
# batch travels as arrays, whose dumper is Python (~5 µs a record): one statement for
# every larger size.
_VALUES_ROWS = 64
_COLUMNS = "INSERT INTO chronicle.records (log_id, seq, cid, type, body, chain, tree) "
_INSERT_ARRAYS = (
    _COLUMNS + "SELECT %s, * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bytea[], "
    "%s::bytea[], %s::bytea[])"
)


def _with_outbox(insert: str) -> str:
    return (
        "WITH stored AS (" + insert + " RETURNING log_id, seq) "
        "INSERT INTO chronicle.outbox (log_id, seq) SELECT log_id, seq FROM stored"
    )


def _insert_values(rows: int) -> str:
    return _COLUMNS + "VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * rows)


_STATEMENTS = {
    outbox: [
        (_with_outbox if outbox else str)(_insert_values(rows) if rows else _INSERT_ARRAYS)
        for rows in range(_VALUES_ROWS + 1)
    ]
    for outbox in (False, True)
}  # [outbox][rows]: the VALUES statement of that many rows; [outbox][0]: the arrays
# Claims of the idempotency store (same database) settled by the statement that appends
# their COMPLETED records (`govfn.chronicle.settlement`): keys, holders, results, expiries.
_SETTLE = (
    "UPDATE idempotency.claims AS c SET state = 'done', result = v.result, "
    "until = now() + make_interval(secs => v.expiry) "
    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[]) "
    "AS v(key, holder, result, expiry) WHERE c.key = v.key AND c.holder = v.holder "
    "AND c.state = 'running'"
)


def _settling(
    statement: str, params: list[Any], settlements: Sequence[Settlement]
) -> tuple[str, list[Any]]:
    """`statement` that also settles `settlements`, in one statement (one transaction)."""
    settle = "WITH settled AS (" + _SETTLE + ") "
    if statement.startswith("WITH "):
        statement = settle + ", " + statement[len("WITH ") :]
    else:
        statement = settle + statement
    columns = [list(column) for column in zip(*settlements, strict=True)]
    return statement, [*columns, *params]


_REGISTER = "INSERT INTO chronicle.logs (writer) VALUES (%s) RETURNING log_id"
_LOG_HEAD = "SELECT seq, chain FROM chronicle.records WHERE log_id = %s ORDER BY seq DESC LIMIT 1"
_STORED_SINCE = "SELECT cid FROM chronicle.records WHERE log_id = %s AND seq > %s"
_STORED_ANYWHERE = "SELECT cid FROM chronicle.records WHERE cid = ANY(%s)"
_STORED_HASHES = "SELECT seq, tree FROM chronicle.records WHERE log_id = %s AND seq = ANY(%s)"
_LOG_SIZE = "SELECT max(seq) FROM chronicle.records WHERE log_id = %s"
# pg_advisory_xact_lock(key, log_id) of those who store a log's checkpoint notes: "gvfn".
_NOTES_LOCK = int.from_bytes(b"gvfn", "big") - (1 << 31)
# The first record with a CID, through the hash index on cid: OFFSET 0 keeps the planner
# from walking the primary key in (log_id, seq) order instead, filtering every row.
_BY_CID = (
    "SELECT {columns} FROM (SELECT log_id, seq, type, body FROM chronicle.records "
    "WHERE cid = %s OFFSET 0) AS found ORDER BY log_id, seq LIMIT 1"
)

# Connections of a parent process, kept referenced in a forked child so that they are
# never closed there (closing would end the parent's sessions on the shared sockets).
_inherited: list[object] = []


def connection_options(uri: str) -> dict[str, str]:
    """The liveness settings the URI does not set itself (TCP only: not for a Unix socket)."""
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(uri)
    host = str(given.get("host") or "")
    wanted = (
        _LIVENESS if not host.startswith("/") else {"connect_timeout": _LIVENESS["connect_timeout"]}
    )
    return {name: value for name, value in wanted.items() if name not in given}


def psycopg_operational_error() -> type[Exception]:
    import psycopg

    return psycopg.OperationalError


def unreachable(uri: str, exc: BaseException) -> LedgerError:
    """A one-line LedgerError naming the database (a connection failure says so)."""
    import psycopg

    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.OperationalError):
        return LedgerError(f"cannot reach the Chronicle {describe_database(uri)}: {reason}")
    return LedgerError(f"Chronicle {describe_database(uri)}: {reason}")


class _Log:
    """This writer's own log: its id, the last seq written, the chain at it, and the
    tree's right edge (`tree.TreeBuilder`) that the next record's stored hashes extend."""

    __slots__ = ("chain", "in_doubt", "log_id", "seq", "tree")

    def __init__(self, log_id: int) -> None:
        self.log_id = log_id
        self.seq = 0
        self.chain = GENESIS
        self.tree: tree.TreeBuilder | None = tree.TreeBuilder()
        self.in_doubt = False

    def rows(self, records: Sequence[Record], outbox: bool) -> tuple[str, list[Any], int, bytes]:
        """The INSERT of `records` after this head, its parameters, and the head it leads
        to. The tree builder moves on at once: a commit that fails puts the log in doubt,
        and recovery resumes the builder from what the database holds."""
        builder = self.tree
        if builder is None or builder.size != self.seq:
            raise LedgerError(f"log {self.log_id}: the tree's right edge is not known")
        seqs, chains, trees = [], [], []
        seq, chain = self.seq, self.chain
        for record in records:
            seq += 1
            leaf = merkle.leaf_hash(record.canonical)
            chain = chain_next(chain, leaf)
            seqs.append(seq)
            chains.append(chain)
            trees.append(builder.append_packed(leaf))
        if len(records) <= _VALUES_ROWS:
            params: list[Any] = []
            for record, at, linked, stored in zip(records, seqs, chains, trees, strict=True):
                params += (
                    self.log_id,
                    at,
                    record.cid,
                    record.type,
                    record.canonical,
                    linked,
                    stored,
                )
            return _STATEMENTS[outbox][len(records)], params, seq, chain
        params = [
            self.log_id,
            seqs,
            [r.cid for r in records],
            [r.type for r in records],
            [r.canonical for r in records],
            chains,
            trees,
        ]
        return _STATEMENTS[outbox][0], params, seq, chain

    def doubt(self) -> None:
        """The last append may or may not have committed: forget the head until it is read."""
        self.in_doubt = True
        self.tree = None

    def recovered(self, head: tuple[int, bytes] | None, edge: tree.TreeBuilder) -> int:
        """Adopt the head read back after a doubtful commit, and the tree's right edge at
        it (`TreeBuilder.resume`); returns the seq known before."""
        known = self.seq
        self.seq, self.chain = (int(head[0]), bytes(head[1])) if head else (0, GENESIS)
        self.tree = edge
        self.in_doubt = False
        return known


class _AsyncWriter:
    """The connection and log of one commit lane of one event loop."""

    def __init__(self) -> None:
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.log: _Log | None = None
        self.lock = asyncio.Lock()  # one append at a time: each numbers the next rows

    def discard(self) -> None:
        """Drop the connection (its state is unknown); closes the socket without awaiting."""
        if self.conn is not None:
            self.conn.pgconn.finish()
            self.conn = None


class PostgresLedger:
    """The Chronicle in PostgreSQL (see the module docstring); the surface of `Ledger`."""

    backend = "postgres"
    # Commits one event loop may have in flight at once, each on its own connection and
    # log: while one waits for the disk, the next batch is already on its way, and the
    # database flushes both with one write. Lanes connect only when load needs them.
    commit_lanes = 2

    def __init__(self, uri: str, *, outbox: bool = False, create_schema: bool = True) -> None:
        self.uri = uri
        self.where = describe_database(uri)
        self.outbox = outbox
        self.create_schema = create_schema
        self._options: dict[str, Any] | None
        try:
            self._options = connection_options(uri)
        except Exception:  # said at first use, like any other reason the database is unusable
            self._options = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._log: _Log | None = None
        self._writers: dict[tuple[asyncio.AbstractEventLoop, int], _AsyncWriter] = {}
        self._own_logs: set[int] = set()  # the logs this process writes

    # -- connections --------------------------------------------------------------------

    def _forked(self) -> None:
        """In a child process: forget the parent's connections and its log."""
        if self._pid != os.getpid():
            _inherited.extend([self._pool, *(w.conn for w in self._writers.values())])
            self._pool, self._log, self._pid = None, None, os.getpid()
            self._writers, self._own_logs = {}, set()

    def _checked_options(self) -> dict[str, Any]:
        if self._options is None:
            raise LedgerError("the Chronicle location is not a valid PostgreSQL URI")
        return self._options

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        options = self._checked_options()
        try:
            return psycopg.connect(self.uri, autocommit=True, **options)
        except psycopg.Error as exc:
            raise unreachable(self.uri, exc) from None

    def _open_pool(self) -> psycopg_pool.ConnectionPool[Any]:
        import psycopg
        import psycopg_pool

        self._forked()
        if self._pool is None:
            with self._connect() as probe:  # a clear error now, rather than a pool timeout
                try:
                    ensure_schema(probe, self.where, create=self.create_schema)
                except psycopg.Error as exc:
                    raise unreachable(self.uri, exc) from None
            pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
                self.uri,
                min_size=1,
                max_size=4,
                open=False,
                timeout=POOL_TIMEOUT_S,
                kwargs={"autocommit": True, **self._checked_options()},
                name="govfn-chronicle",
            )
            try:
                pool.open(wait=True, timeout=POOL_TIMEOUT_S)
            except psycopg.Error as exc:
                pool.close()
                raise unreachable(self.uri, exc) from None
            self._pool = pool
        return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit); psycopg errors become LedgerError."""
        import psycopg

        pool = self._open_pool()
        try:
            with pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise LedgerError(f"Chronicle {self.where}: {exc}".splitlines()[0]) from exc

    def prepare(self) -> None:
        """Reach the database and create the schema if needed; no connection is kept
        (workers forked afterwards open their own)."""
        import psycopg

        with self._lock, self._connect() as conn:
            try:
                ensure_schema(conn, self.where, create=self.create_schema)
            except psycopg.Error as exc:
                raise unreachable(self.uri, exc) from None

    def init_schema(self) -> None:
        """Create the schema (for `govfn chronicle init`), whatever `create_schema` says."""
        import psycopg

        with self._connect() as conn:
            try:
                ensure_schema(conn, self.where, create=True)
            except psycopg.Error as exc:
                raise unreachable(self.uri, exc) from None

    def close(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._forked()
                return
            if self._pool is not None:
                self._pool.close()
                self._pool = None
            for writer in self._writers.values():
                writer.discard()
            self._writers = {}

    def __enter__(self) -> PostgresLedger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing, synchronously ---------------------------------------------------------

    def append(self, records: Sequence[Record], *, dedupe: bool = False) -> None:
        """Commit records in order, atomically, to this process's log. With `dedupe`,
        CIDs already stored in any log are skipped."""
        if not records:
            return
        with self._lock:
            try:
                self._append_once(records, dedupe)
            except LedgerError as exc:
                if not isinstance(exc.__cause__, psycopg_operational_error()):
                    raise
                self._append_once(records, dedupe)  # a pooled connection the database dropped

    def _append_once(self, records: Sequence[Record], dedupe: bool) -> None:
        with self.connection() as conn:
            log = self._log
            try:
                if log is None:
                    log = self._log = _Log(self._registered(self._register(conn)))
                records = self._sync_filter(conn, log, records, dedupe)
                if not records:
                    return
                statement, params, seq, chain = log.rows(records, self.outbox)
                conn.execute(statement, params)
            except BaseException:
                if log is not None:
                    log.doubt()
                raise
            log.seq, log.chain = seq, chain

    @staticmethod
    def _register(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(_REGISTER, (_writer_name(),)).fetchone()
        assert row is not None
        return int(row[0])

    def _registered(self, log_id: int) -> int:
        self._own_logs.add(log_id)
        return log_id

    @staticmethod
    def _sync_filter(
        conn: psycopg.Connection[Any], log: _Log, records: Sequence[Record], dedupe: bool
    ) -> Sequence[Record]:
        stored: set[str] = set()
        if log.in_doubt:
            head = conn.execute(_LOG_HEAD, (log.log_id,)).fetchone()
            size = int(head[0]) if head else 0
            edge = tree.TreeBuilder.resume(size, _reader(conn, log.log_id))
            known = log.recovered(head, edge)
            stored |= {row[0] for row in conn.execute(_STORED_SINCE, (log.log_id, known))}
        if dedupe:
            cids = [r.cid for r in records]
            stored |= {row[0] for row in conn.execute(_STORED_ANYWHERE, (cids,))}
        return [r for r in records if r.cid not in stored] if stored else records

    # -- writing, on the event loop -----------------------------------------------------

    async def append_async(
        self,
        records: Sequence[Record],
        lane: int = 0,
        settlements: Sequence[Settlement] = (),
        *,
        dedupe: bool = False,
    ) -> None:
        """`append` on the caller's event loop: one statement, one commit, through the
        connection and log of `lane` (see `commit_lanes`); the same statement settles
        `settlements`. With `dedupe` (records handed over again after a failure, whose
        first commit may have landed in another lane's log), CIDs stored in any log are
        skipped."""
        import psycopg

        if not records:
            return
        self._forked()
        key = (asyncio.get_running_loop(), lane)
        writer = self._writers.get(key)
        if writer is None:
            for gone in [other for other in self._writers if other[0].is_closed()]:
                self._writers.pop(gone).discard()
            writer = self._writers[key] = _AsyncWriter()
        async with writer.lock:
            for attempt in (1, 2):
                reused = writer.conn is not None
                try:
                    await asyncio.wait_for(
                        self._append_on(writer, records, settlements, dedupe), COMMIT_TIMEOUT_S
                    )
                    return
                except BaseException as exc:
                    if writer.log is not None:
                        writer.log.doubt()
                    writer.discard()
                    if attempt == 1 and reused and isinstance(exc, psycopg.OperationalError):
                        continue  # a connection the database dropped (it restarted): reconnect
                    if isinstance(exc, psycopg.Error):
                        raise LedgerError(
                            f"cannot write the Chronicle {self.where}: {exc}"
                        ) from exc
                    if isinstance(exc, TimeoutError):
                        raise LedgerError(
                            f"the Chronicle {self.where} did not commit in {COMMIT_TIMEOUT_S:.0f} s"
                        ) from exc
                    raise

    async def _append_on(
        self,
        writer: _AsyncWriter,
        records: Sequence[Record],
        settlements: Sequence[Settlement],
        dedupe: bool,
    ) -> None:
        conn = await self._async_connection(writer)
        if writer.log is None:
            cursor = await conn.execute(_REGISTER, (_writer_name(),))
            row = await cursor.fetchone()
            assert row is not None
            writer.log = _Log(self._registered(int(row[0])))
        log = writer.log
        if log.in_doubt:
            cursor = await conn.execute(_LOG_HEAD, (log.log_id,))
            head = await cursor.fetchone()
            size = int(head[0]) if head else 0
            wanted = sorted({tree.packed_location(i)[0] for i in tree.frontier_indexes(size)})
            cursor = await conn.execute(_STORED_HASHES, (log.log_id, wanted))
            stored_edge = {int(seq): bytes(hashes) for seq, hashes in await cursor.fetchall()}
            edge = tree.TreeBuilder.resume(
                size, _checked(tree.packed_reader(lambda _: stored_edge))
            )
            known = log.recovered(head, edge)
            cursor = await conn.execute(_STORED_SINCE, (log.log_id, known))
            stored = {row[0] for row in await cursor.fetchall()}
            records = [r for r in records if r.cid not in stored]
        if dedupe and records:
            cursor = await conn.execute(_STORED_ANYWHERE, ([r.cid for r in records],))
            stored = {row[0] for row in await cursor.fetchall()}
            records = [r for r in records if r.cid not in stored]
        if not records:  # committed: its settlements with it (sent again, they change nothing)
            if settlements:
                await conn.execute(_SETTLE, [list(c) for c in zip(*settlements, strict=True)])
            return
        statement, params, seq, chain = log.rows(records, self.outbox)
        if settlements:
            statement, params = _settling(statement, params, settlements)
        await conn.execute(statement, params)
        log.seq, log.chain = seq, chain

    async def _async_connection(self, writer: _AsyncWriter) -> psycopg.AsyncConnection[Any]:
        import psycopg

        if writer.conn is None or writer.conn.closed:
            options = self._checked_options()
            try:
                conn = await psycopg.AsyncConnection.connect(self.uri, autocommit=True, **options)
            except psycopg.Error as exc:
                raise unreachable(self.uri, exc) from None
            writer.conn = conn
            await ensure_schema_async(conn, self.where, create=self.create_schema)
        return writer.conn

    # -- reading ------------------------------------------------------------------------

    def logs(self) -> list[int]:
        with self.connection() as conn:
            rows = conn.execute("SELECT log_id FROM chronicle.logs ORDER BY log_id").fetchall()
        return [int(row[0]) for row in rows]

    def _stream(self, query: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of a query through a server-side cursor (exports need not fit in memory)."""
        with self.connection() as conn, conn.transaction(), conn.cursor(name="govfn_read") as cur:
            cur.itersize = 2000
            cur.execute(query, params)
            yield from cur

    def __len__(self) -> int:
        with self.connection() as conn:
            row = conn.execute("SELECT count(*) FROM chronicle.records").fetchone()
        return int(row[0]) if row else 0

    def records(self) -> Iterator[Record]:
        """Every record, log by log, each log in order."""
        for record_type, body in self._stream(
            "SELECT type, body FROM chronicle.records ORDER BY log_id, seq"
        ):
            yield Record.from_canonical(record_type, bytes(body))

    def get(self, cid: str) -> Record | None:
        with self.connection() as conn:
            row = conn.execute(_BY_CID.format(columns="type, body"), (cid,)).fetchone()
        return Record.from_canonical(row[0], bytes(row[1])) if row else None

    def log(self, log_id: int) -> PostgresLog:
        """One log of the database, for its tree head, proofs and signed checkpoints."""
        return PostgresLog(self, log_id)

    def own_logs(self) -> list[PostgresLog]:
        """The logs this process has appended to (what its checkpoint publisher signs); in
        a forked child that has not appended yet, none (its parent's are not its own)."""
        if self._pid != os.getpid():
            return []
        return [self.log(log_id) for log_id in sorted(self._own_logs)]

    def logs_to_sign(self) -> list[tuple[str | None, PostgresLog]]:
        """For `publisher.CheckpointPublisher`: this process's logs, each named by its id
        (its checkpoints' origin is `<origin>/<log id>`)."""
        return [(str(log.log_id), log) for log in self.own_logs()]

    def tree_heads(self) -> list[TreeHead]:
        """The head of every log, each from O(log n) stored hashes."""
        return [TreeHead(log_id, *self.log(log_id).head()) for log_id in self.logs()]

    def checkpoint_logs(self) -> list[TreeHead]:
        """Store the current head of every log that holds records, and return them."""
        heads = [head for head in self.tree_heads() if head.tree_size]
        with self.connection() as conn, conn.transaction():
            for head in heads:
                conn.execute(
                    "INSERT INTO chronicle.checkpoints (log_id, tree_size, root) "
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    (head.log, head.tree_size, bytes.fromhex(head.root)),
                )
        return heads

    def proof(self, cid: str) -> InclusionProof:
        """RFC 6962 inclusion proof of a record in its log's current tree (O(log n) rows)."""
        with self.connection() as conn:
            row = conn.execute(_BY_CID.format(columns="log_id, seq"), (cid,)).fetchone()
        if row is None:
            raise KeyError(cid)
        return self.log(int(row[0])).inclusion_proof(int(row[1]) - 1, cid=cid)

    def verify(self) -> VerifyReport:
        """Recompute every CID, each log's chain, tree and stored tree hashes, and every
        stored checkpoint."""
        with self.connection() as conn:
            rows = conn.execute(
                "SELECT log_id, tree_size, root FROM chronicle.checkpoints"
            ).fetchall()
        checkpoints: dict[int, dict[int, bytes]] = {}
        for log_id, size, root in rows:
            checkpoints.setdefault(int(log_id), {})[int(size)] = bytes(root)
        total = 0
        heads: list[TreeHead] = []
        for log_id in self.logs():
            report = self._verify_log(log_id, checkpoints.get(log_id, {}))
            total += report.records
            if not report.ok:
                return report._replace(records=total, heads=tuple(heads))
            heads.append(TreeHead(log_id, report.records, report.root))
        root = heads[0].root if len(heads) == 1 else ""
        return VerifyReport(True, total, root, heads=tuple(heads))

    def _verify_log(self, log_id: int, checkpoints: dict[int, bytes]) -> VerifyReport:
        chain = GENESIS
        built = tree.TreeBuilder()
        roots_at: dict[int, bytes] = {}

        def bad(problem: str, seq: int | None = None, cid: str | None = None) -> VerifyReport:
            return VerifyReport(
                False, built.size, built.root().hex(), f"log {log_id}: {problem}", seq, cid, log_id
            )

        rows = self._stream(
            "SELECT seq, cid, body, chain, tree FROM chronicle.records WHERE log_id = %s "
            "ORDER BY seq",
            (log_id,),
        )
        for expected_seq, (seq, cid, body, stored_chain, stored_tree) in enumerate(rows, start=1):
            body = bytes(body)
            if seq != expected_seq:
                return bad(f"record {expected_seq} is missing", seq, cid)
            if cid_of_canonical(body) != cid:
                return bad("content does not match its CID", seq, cid)
            leaf = merkle.leaf_hash(body)
            chain = chain_next(chain, leaf)
            if chain != bytes(stored_chain):
                return bad("hash chain broken (altered, removed or reordered)", seq, cid)
            expected = built.append_packed(leaf)
            if stored_tree is None:
                return bad(
                    "its Merkle tree hashes are not stored (proofs cannot be made)", seq, cid
                )
            if bytes(stored_tree) != expected:
                return bad(
                    "its stored Merkle tree hashes do not match the records "
                    "(proofs from them would not hold)",
                    seq,
                    cid,
                )
            if seq in checkpoints:
                roots_at[seq] = built.root()
        for size, stored_root in sorted(checkpoints.items()):
            if size > built.size:
                return bad(f"checkpoint at size {size} but only {built.size} records")
            if roots_at.get(size, merkle.EMPTY_ROOT) != stored_root:
                return bad(f"checkpoint at size {size} no longer matches the tree")
        return VerifyReport(True, built.size, built.root().hex())


class PostgresLog:
    """One log of a `PostgresLedger`: its tree head, inclusion and consistency proofs (each
    from O(log n) stored hashes), and its signed checkpoints (a `witness.CheckpointLog`)."""

    def __init__(self, ledger: PostgresLedger, log_id: int) -> None:
        self.ledger = ledger
        self.log_id = log_id

    def _size(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(_LOG_SIZE, (self.log_id,)).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def head(self) -> tuple[int, str]:
        """(tree size, root hex) of the log."""
        with self.ledger.connection() as conn:
            size = self._size(conn)
            return size, tree.tree_hash(size, _reader(conn, self.log_id)).hex()

    def root_at(self, size: int) -> bytes:
        with self.ledger.connection() as conn:
            if not 0 <= size <= self._size(conn):
                raise ValueError(f"tree size {size} outside log {self.log_id}")
            return tree.tree_hash(size, _reader(conn, self.log_id))

    def inclusion_proof(
        self, index: int, tree_size: int | None = None, *, cid: str = ""
    ) -> InclusionProof:
        """RFC 6962 audit path of leaf `index` in the tree of `tree_size` (default: all)."""
        with self.ledger.connection() as conn:
            current = self._size(conn)
            size = current if tree_size is None else tree_size
            if not 0 <= index < size or size > current:
                raise ValueError(f"no leaf {index} in a tree of {size} in log {self.log_id}")
            read = _reader(conn, self.log_id)
            path = tree.inclusion_proof(index, size, read)
            (leaf,) = read([tree.stored_hash_index(0, index)])
            root = tree.tree_hash(size, read)
        return InclusionProof(
            cid=cid,
            leaf_index=index,
            tree_size=size,
            leaf_hash=leaf.hex(),
            audit_path=[node.hex() for node in path],
            root=root.hex(),
            log=self.log_id,
        )

    def consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """RFC 6962 consistency proof from tree size `old_size` to `new_size` (default: all)."""
        with self.ledger.connection() as conn:
            current = self._size(conn)
            new = current if new_size is None else new_size
            if not 0 <= old_size <= new <= current:
                raise ValueError(
                    f"no consistency proof from tree size {old_size} to {new} "
                    f"in log {self.log_id} of {current} records"
                )
            old_root, new_root, proof = tree.roots_and_proof(
                old_size, new, _reader(conn, self.log_id)
            )
        return ConsistencyProof(
            old_size, new, old_root.hex(), new_root.hex(), [node.hex() for node in proof]
        )

    def store_signed_checkpoint(self, tree_size: int, root: bytes, note: str) -> bool:
        """Keep a signed checkpoint note of this log (and its tree head) and, with an
        outbox, queue it for the sink, in one transaction. False if this note is already
        stored, or if a note of a larger tree of this log is (a head read before another
        signer stored a newer one must not follow it: a witness takes only growing trees)."""
        with self.ledger.connection() as conn, conn.transaction():
            # serialises the signers of this log (appends take no such lock; an advisory
            # lock needs no privilege beyond the serving role's SELECT and INSERT)
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_NOTES_LOCK, self.log_id))
            row = conn.execute(
                "SELECT max(tree_size) FROM chronicle.checkpoint_notes WHERE log_id = %s",
                (self.log_id,),
            ).fetchone()
            if row and row[0] is not None and int(row[0]) > tree_size:
                return False
            conn.execute(
                "INSERT INTO chronicle.checkpoints (log_id, tree_size, root) "
                "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (self.log_id, tree_size, root),
            )
            stored = conn.execute(
                "INSERT INTO chronicle.checkpoint_notes (log_id, tree_size, note) "
                "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
                (self.log_id, tree_size, note),
            ).fetchone()
            if stored is not None and self.ledger.outbox:
                conn.execute("INSERT INTO chronicle.note_outbox (id) VALUES (%s)", (stored[0],))
        return stored is not None

    def signed_checkpoints(self) -> list[str]:
        """The signed checkpoint notes of this log, oldest first."""
        with self.ledger.connection() as conn:
            rows = conn.execute(
                "SELECT note FROM chronicle.checkpoint_notes WHERE log_id = %s ORDER BY id",
                (self.log_id,),
            ).fetchall()
        return [str(note) for (note,) in rows]


def _checked(read: tree.HashReader) -> tree.HashReader:
    """A reader whose missing hashes are a LedgerError (a record written before the
    stored hashes, or removed)."""

    def read_or_fail(indexes: Sequence[int]) -> Sequence[bytes]:
        try:
            return read(indexes)
        except KeyError as exc:
            raise LedgerError(f"Chronicle ledger: {exc.args[0]}") from None

    return read_or_fail


def _reader(conn: psycopg.Connection[Any], log_id: int) -> tree.HashReader:
    """Stored tree hashes of one log by index, from `records.tree` (one indexed read of
    the rows that hold them)."""

    def fetch(seqs: list[int]) -> dict[int, bytes]:
        rows = conn.execute(_STORED_HASHES, (log_id, seqs)).fetchall()
        return {int(seq): bytes(hashes) for seq, hashes in rows if hashes is not None}

    return _checked(tree.packed_reader(fetch))


def _writer_name() -> str:
    """Who writes a log: the host (a pod's name) and the process."""
    return f"{socket.gethostname()} pid {os.getpid()}"
