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

from govfn.chronicle import merkle
from govfn.chronicle.cid import cid_of_canonical
from govfn.chronicle.postgres_schema import ensure_schema, ensure_schema_async
from govfn.chronicle.records import Record
from govfn.chronicle.store import (
    GENESIS,
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

# One statement per append, whatever its size: rows of a batch travel as arrays (one
# prepared statement for every batch size); a lone record, the common case, as VALUES.
_INSERT_MANY = (
    "INSERT INTO chronicle.records (log_id, seq, cid, type, body, chain) "
    "SELECT %s, * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bytea[], %s::bytea[])"
)
_INSERT_ONE = (
    "INSERT INTO chronicle.records (log_id, seq, cid, type, body, chain) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
)


def _with_outbox(insert: str) -> str:
    return (
        "WITH stored AS (" + insert + " RETURNING log_id, seq) "
        "INSERT INTO chronicle.outbox (log_id, seq) SELECT log_id, seq FROM stored"
    )


_STATEMENTS = {
    (False, False): _INSERT_MANY,
    (False, True): _INSERT_ONE,
    (True, False): _with_outbox(_INSERT_MANY),
    (True, True): _with_outbox(_INSERT_ONE),
}
_REGISTER = "INSERT INTO chronicle.logs (writer) VALUES (%s) RETURNING log_id"
_LOG_HEAD = "SELECT seq, chain FROM chronicle.records WHERE log_id = %s ORDER BY seq DESC LIMIT 1"
_STORED_SINCE = "SELECT cid FROM chronicle.records WHERE log_id = %s AND seq > %s"
_STORED_ANYWHERE = "SELECT cid FROM chronicle.records WHERE cid = ANY(%s)"

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
    """This writer's own log: its id, the last seq written and the chain at it."""

    __slots__ = ("chain", "in_doubt", "log_id", "seq")

    def __init__(self, log_id: int) -> None:
        self.log_id = log_id
        self.seq = 0
        self.chain = GENESIS
        self.in_doubt = False

    def rows(self, records: Sequence[Record], outbox: bool) -> tuple[str, list[Any], int, bytes]:
        """The INSERT of `records` after this head, its parameters, and the head it leads to."""
        seqs, chains = [], []
        seq, chain = self.seq, self.chain
        for record in records:
            seq += 1
            chain = chain_next(chain, merkle.leaf_hash(record.canonical))
            seqs.append(seq)
            chains.append(chain)
        if len(records) == 1:
            record = records[0]
            params = [self.log_id, seq, record.cid, record.type, record.canonical, chain]
        else:
            params = [
                self.log_id,
                seqs,
                [r.cid for r in records],
                [r.type for r in records],
                [r.canonical for r in records],
                chains,
            ]
        return _STATEMENTS[outbox, len(records) == 1], params, seq, chain

    def recovered(self, head: tuple[int, bytes] | None) -> int:
        """Adopt the head read back after a doubtful commit; returns the seq known before."""
        known = self.seq
        self.seq, self.chain = (int(head[0]), bytes(head[1])) if head else (0, GENESIS)
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

    # -- connections --------------------------------------------------------------------

    def _forked(self) -> None:
        """In a child process: forget the parent's connections and its log."""
        if self._pid != os.getpid():
            _inherited.extend([self._pool, *(w.conn for w in self._writers.values())])
            self._pool, self._log, self._pid = None, None, os.getpid()
            self._writers = {}

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
                    log = self._log = _Log(self._register(conn))
                records = self._sync_filter(conn, log, records, dedupe)
                if not records:
                    return
                statement, params, seq, chain = log.rows(records, self.outbox)
                conn.execute(statement, params)
            except BaseException:
                if log is not None:
                    log.in_doubt = True
                raise
            log.seq, log.chain = seq, chain

    @staticmethod
    def _register(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(_REGISTER, (_writer_name(),)).fetchone()
        assert row is not None
        return int(row[0])

    @staticmethod
    def _sync_filter(
        conn: psycopg.Connection[Any], log: _Log, records: Sequence[Record], dedupe: bool
    ) -> Sequence[Record]:
        stored: set[str] = set()
        if log.in_doubt:
            known = log.recovered(conn.execute(_LOG_HEAD, (log.log_id,)).fetchone())
            stored |= {row[0] for row in conn.execute(_STORED_SINCE, (log.log_id, known))}
        if dedupe:
            cids = [r.cid for r in records]
            stored |= {row[0] for row in conn.execute(_STORED_ANYWHERE, (cids,))}
        return [r for r in records if r.cid not in stored] if stored else records

    # -- writing, on the event loop -----------------------------------------------------

    async def append_async(self, records: Sequence[Record], lane: int = 0) -> None:
        """`append` on the caller's event loop: one statement, one commit, through the
        connection and log of `lane` (see `commit_lanes`)."""
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
                    await asyncio.wait_for(self._append_on(writer, records), COMMIT_TIMEOUT_S)
                    return
                except BaseException as exc:
                    if writer.log is not None:
                        writer.log.in_doubt = True
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

    async def _append_on(self, writer: _AsyncWriter, records: Sequence[Record]) -> None:
        conn = await self._async_connection(writer)
        if writer.log is None:
            cursor = await conn.execute(_REGISTER, (_writer_name(),))
            row = await cursor.fetchone()
            assert row is not None
            writer.log = _Log(int(row[0]))
        log = writer.log
        if log.in_doubt:
            cursor = await conn.execute(_LOG_HEAD, (log.log_id,))
            known = log.recovered(await cursor.fetchone())
            cursor = await conn.execute(_STORED_SINCE, (log.log_id, known))
            stored = {row[0] for row in await cursor.fetchall()}
            records = [r for r in records if r.cid not in stored]
            if not records:
                return
        statement, params, seq, chain = log.rows(records, self.outbox)
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
            row = conn.execute(
                "SELECT type, body FROM chronicle.records WHERE cid = %s "
                "ORDER BY log_id, seq LIMIT 1",
                (cid,),
            ).fetchone()
        return Record.from_canonical(row[0], bytes(row[1])) if row else None

    def _leaves(self, log_id: int) -> list[bytes]:
        return [
            merkle.leaf_hash(bytes(body))
            for (body,) in self._stream(
                "SELECT body FROM chronicle.records WHERE log_id = %s ORDER BY seq", (log_id,)
            )
        ]

    def tree_heads(self) -> list[TreeHead]:
        heads = []
        for log_id in self.logs():
            leaves = self._leaves(log_id)
            heads.append(TreeHead(log_id, len(leaves), merkle.root(leaves).hex()))
        return heads

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
        with self.connection() as conn:
            row = conn.execute(
                "SELECT log_id, seq FROM chronicle.records WHERE cid = %s "
                "ORDER BY log_id, seq LIMIT 1",
                (cid,),
            ).fetchone()
        if row is None:
            raise KeyError(cid)
        log_id, seq = int(row[0]), int(row[1])
        seqs_and_leaves = [
            (int(s), merkle.leaf_hash(bytes(body)))
            for s, body in self._stream(
                "SELECT seq, body FROM chronicle.records WHERE log_id = %s ORDER BY seq",
                (log_id,),
            )
        ]
        leaves = [leaf for _, leaf in seqs_and_leaves]
        index = next(i for i, (s, _) in enumerate(seqs_and_leaves) if s == seq)
        return InclusionProof(
            cid=cid,
            leaf_index=index,
            tree_size=len(leaves),
            leaf_hash=leaves[index].hex(),
            audit_path=[node.hex() for node in merkle.inclusion_proof(index, leaves)],
            root=merkle.root(leaves).hex(),
            log=log_id,
        )

    def verify(self) -> VerifyReport:
        """Recompute every CID, each log's chain and tree, and every stored checkpoint."""
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
        leaves: list[bytes] = []
        roots_at: dict[int, bytes] = {}

        def bad(problem: str, seq: int | None = None, cid: str | None = None) -> VerifyReport:
            return VerifyReport(
                False, len(leaves), merkle.root(leaves).hex(), problem, seq, cid, log_id
            )

        rows = self._stream(
            "SELECT seq, cid, body, chain FROM chronicle.records WHERE log_id = %s ORDER BY seq",
            (log_id,),
        )
        for expected_seq, (seq, cid, body, stored_chain) in enumerate(rows, start=1):
            body = bytes(body)
            if seq != expected_seq:
                return bad(f"log {log_id}: record {expected_seq} is missing", seq, cid)
            if cid_of_canonical(body) != cid:
                return bad(f"log {log_id}: content does not match its CID", seq, cid)
            leaf = merkle.leaf_hash(body)
            chain = chain_next(chain, leaf)
            if chain != bytes(stored_chain):
                return bad(
                    f"log {log_id}: hash chain broken (altered, removed or reordered)", seq, cid
                )
            leaves.append(leaf)
            if seq in checkpoints:
                roots_at[seq] = merkle.root(leaves)
        for size, stored_root in sorted(checkpoints.items()):
            if size > len(leaves):
                return bad(
                    f"log {log_id}: checkpoint at size {size} but only {len(leaves)} records"
                )
            if roots_at.get(size, merkle.root(leaves[:size])) != stored_root:
                return bad(f"log {log_id}: checkpoint at size {size} no longer matches the tree")
        return VerifyReport(True, len(leaves), merkle.root(leaves).hex())


def _writer_name() -> str:
    """Who writes a log: the host (a pod's name) and the process."""
    return f"{socket.gethostname()} pid {os.getpid()}"
