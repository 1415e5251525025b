"""The Chronicle ledger on PostgreSQL: shared tables, one log per writer at a time.

Every writer (a process, or one commit lane of its event loop: see below) leases a log
(a row of `chronicle.logs`: the lowest nobody holds, a new one only when all are held;
`leases.py`) and is that log's only writer while it holds it: it numbers the log's
records 1, 2, 3... and chains them with SHA-256(previous chain || RFC 6962 leaf hash) in
memory, so an append is one INSERT of rows that are already complete. No append
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
up to `commit_lanes` commits in flight, each lane with its own connection and log: one
unless asked).
Reads, the CLI and synchronous appends share a small psycopg_pool connection pool. With
`outbox`, every appended record is queued for K_SINK in the same statement
(`outbox.PostgresOutbox` sends it).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from govfn.chronicle import tree
from govfn.chronicle.chronicle import Chronicle
from govfn.chronicle.client import AsyncLedgerChronicle
from govfn.chronicle.log import Log
from govfn.chronicle.postgres import leases
from govfn.chronicle.postgres.database import (
    Database,
    psycopg_operational_error,
    unreachable,
)
from govfn.chronicle.postgres.database import (
    inherited_connections as _inherited,
)
from govfn.chronicle.postgres.rows import SETTLE, WriterLog
from govfn.chronicle.postgres.schema import ensure_schema_async
from govfn.chronicle.postgres.storage import STORED_HASHES as _STORED_HASHES
from govfn.chronicle.postgres.storage import TableLog
from govfn.chronicle.postgres.storage import hash_reader as _reader
from govfn.chronicle.records import Record
from govfn.chronicle.settlement import Settlement
from govfn.chronicle.store import LedgerError, checked_reader

if TYPE_CHECKING:
    import psycopg

COMMIT_TIMEOUT_S = 30.0
DEFAULT_COMMIT_LANES = 1  # see PostgresLedger.__init__

_LOG_HEAD = "SELECT seq, chain FROM chronicle.records WHERE log_id = %s ORDER BY seq DESC LIMIT 1"
_STORED_SINCE = "SELECT cid FROM chronicle.records WHERE log_id = %s AND seq > %s"
_STORED_ANYWHERE = "SELECT cid FROM chronicle.records WHERE cid = ANY(%s)"
# The first record with a CID, through the hash index on cid: OFFSET 0 keeps the planner
# from walking the primary key in (log_id, seq) order instead, filtering every row.
_BY_CID = (
    "SELECT {columns} FROM (SELECT log_id, seq, type, body FROM chronicle.records "
    "WHERE cid = %s OFFSET 0) AS found ORDER BY log_id, seq LIMIT 1"
)


class _AsyncWriter:
    """The connection and log of one commit lane of one event loop."""

    def __init__(self) -> None:
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.log: WriterLog | None = None
        self.leased_on: object = None  # the connection whose session holds the log's lease
        self.lock = asyncio.Lock()  # one append at a time: each numbers the next rows

    def discard(self) -> None:
        """Drop the connection (its state is unknown); closes the socket without awaiting."""
        if self.conn is not None:
            self.conn.pgconn.finish()
            self.conn = None


class PostgresLedger(Database, Chronicle):
    """The Chronicle in PostgreSQL (see the module docstring): one log per writer at a time."""

    def __init__(
        self,
        uri: str,
        *,
        outbox: bool = False,
        create_schema: bool = True,
        commit_lanes: int = DEFAULT_COMMIT_LANES,
    ) -> None:
        super().__init__(uri, create_schema=create_schema)
        self.outbox = outbox
        # Commits one event loop may have in flight at once, each on its own connection
        # and log; lanes connect only when load needs them. One by default: a second lane
        # commit's flush waits for the first's on the database's one WAL, so two lanes
        # paid a flush per commit all the same, with smaller batches (more commits per
        # request, more CPU on both sides: `benchmarks.postgres_profile`).
        self.commit_lanes = commit_lanes
        self._log: WriterLog | None = None
        self._lease_conn: psycopg.Connection[Any] | None = None  # holds the sync log's lease
        self._writers: dict[tuple[asyncio.AbstractEventLoop, int], _AsyncWriter] = {}
        self._own_logs: set[int] = set()  # the logs this process writes

    # -- connections --------------------------------------------------------------------

    def _forked(self) -> None:
        """In a child process: forget the parent's connections and its log."""
        if self._pid != os.getpid():
            _inherited.extend([self._lease_conn, *(w.conn for w in self._writers.values())])
            self._log, self._lease_conn, self._writers, self._own_logs = None, None, {}, set()
            super()._forked()

    def client(self) -> AsyncLedgerChronicle:
        return AsyncLedgerChronicle(self)

    def close(self) -> None:
        super().close()
        with self._lock:
            if self._lease_conn is not None:
                self._lease_conn.close()  # frees the log for the next writer
                self._lease_conn, self._log = None, None
            for writer in self._writers.values():
                writer.discard()
            self._writers = {}

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
        import psycopg

        with self.connection() as conn:
            log = self._log
            try:
                if log is None:
                    log = self._log = self._lease()
                records = self._sync_filter(conn, log, records, dedupe)
                if not records:
                    return
                statement, params, seq, chain = log.rows(records, self.outbox)
                psycopg.RawCursor(conn).execute(statement, params)
            except BaseException:
                if log is not None:
                    log.doubt()
                raise
            log.seq, log.chain = seq, chain

    def _lease(self) -> WriterLog:
        """Lease a log (`leases`) for synchronous appends, on a connection kept for it."""
        import psycopg

        if self._lease_conn is None or self._lease_conn.closed:
            self._lease_conn = self._connect()
        try:
            log_id, head = leases.lease(self._lease_conn, _writer_name())
        except psycopg.Error as exc:
            raise unreachable(self.uri, exc) from None
        return WriterLog.leased(self._registered(log_id), head)

    def _registered(self, log_id: int) -> int:
        self._own_logs.add(log_id)
        return log_id

    @staticmethod
    def _sync_filter(
        conn: psycopg.Connection[Any], log: WriterLog, records: Sequence[Record], dedupe: bool
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
                    async with asyncio.timeout(COMMIT_TIMEOUT_S):  # no task of its own
                        await self._append_on(writer, records, settlements, dedupe)
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
        import psycopg

        conn = await self._async_connection(writer)
        if writer.leased_on is not conn:  # a new connection: its session holds no lease yet
            kept = writer.log.log_id if writer.log is not None else None
            log_id, at = await leases.lease_async(conn, _writer_name(), prefer=kept)
            writer.leased_on = conn
            if log_id != kept:
                self._own_logs.discard(kept or 0)
                writer.log = WriterLog.leased(self._registered(log_id), at)
                if kept is not None:  # what was in doubt in the old log may be stored there
                    cursor = await conn.execute(_STORED_ANYWHERE, ([r.cid for r in records],))
                    stored = {row[0] for row in await cursor.fetchall()}
                    records = [r for r in records if r.cid not in stored]
        log = writer.log
        assert log is not None
        if log.in_doubt:
            cursor = await conn.execute(_LOG_HEAD, (log.log_id,))
            head = await cursor.fetchone()
            size = int(head[0]) if head else 0
            wanted = sorted({tree.packed_location(i)[0] for i in tree.frontier_indexes(size)})
            cursor = await conn.execute(_STORED_HASHES, (log.log_id, wanted))
            stored_edge = {int(seq): bytes(hashes) for seq, hashes in await cursor.fetchall()}
            edge = tree.TreeBuilder.resume(
                size, checked_reader(tree.packed_reader(lambda _: stored_edge))
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
                columns = [list(c) for c in zip(*settlements, strict=True)]
                await psycopg.AsyncRawCursor(conn).execute(SETTLE, columns)
            return
        statement, params, seq, chain = log.rows(records, self.outbox, settlements)
        await psycopg.AsyncRawCursor(conn).execute(statement, params)
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

    def log_ids(self) -> list[int]:
        with self.connection() as conn:
            rows = conn.execute("SELECT log_id FROM chronicle.logs ORDER BY log_id").fetchall()
        return [int(row[0]) for row in rows]

    def logs(self) -> list[Log]:
        return [Log(TableLog(self, log_id)) for log_id in self.log_ids()]

    def __len__(self) -> int:
        with self.connection() as conn:
            row = conn.execute("SELECT count(*) FROM chronicle.records").fetchone()
        return int(row[0]) if row else 0

    def records(self) -> Iterator[Record]:
        """Every record, log by log, each log in order."""
        for record_type, body in self.stream(
            "SELECT type, body FROM chronicle.records ORDER BY log_id, seq"
        ):
            yield Record.from_canonical(record_type, bytes(body))

    def get(self, cid: str) -> Record | None:
        with self.connection() as conn:
            row = conn.execute(_BY_CID.format(columns="type, body"), (cid,)).fetchone()
        return Record.from_canonical(row[0], bytes(row[1])) if row else None

    def own_logs(self) -> list[Log]:
        """The logs this process has appended to (what its checkpoint publisher signs); in
        a forked child that has not appended yet, none (its parent's are not its own)."""
        if self._pid != os.getpid():
            return []
        return [Log(TableLog(self, log_id)) for log_id in sorted(self._own_logs)]

    def locate(self, cid: str) -> tuple[Log, int] | None:
        with self.connection() as conn:
            row = conn.execute(_BY_CID.format(columns="log_id, seq"), (cid,)).fetchone()
        return None if row is None else (Log(TableLog(self, int(row[0]))), int(row[1]) - 1)


def _writer_name() -> str:
    """Who writes a log: the host (a pod's name) and the process."""
    return f"{socket.gethostname()} pid {os.getpid()}"
