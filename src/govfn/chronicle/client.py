"""Chronicle clients: where records go.

A chronicle client is any object with `async emit(event_type, payload)`. Clients that
also offer `emit_record(record)` receive the already canonicalised `Record`, which
saves a second canonicalisation; the runtime's `Backstop` prefers it when present.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from govfn.chronicle.records import Record
from govfn.chronicle.settlement import Settlement
from govfn.chronicle.store import LedgerError


@runtime_checkable
class ChronicleClient(Protocol):
    async def emit(self, event_type: str, payload: dict[str, Any]) -> Any: ...


class _Batch:
    """The records that joined an open batch, each with the future its emitter awaits."""

    __slots__ = ("joined", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.joined: list[tuple[Record, asyncio.Future[None]]] = []


class SyncLedger(Protocol):
    """A ledger whose appends are local writes, made off the event loop's I/O (SQLite)."""

    def append(self, records: Sequence[Record], *, dedupe: bool = False) -> None: ...

    def get(self, cid: str) -> Record | None: ...

    def prepare(self) -> None: ...

    def close(self) -> None: ...


class LedgerChronicle:
    """Writes records to the embedded ledger; `emit` returns once the record is committed.

    Group commit: the first record of a batch yields to the event loop once, so that every
    task already ready to run gets its turn, and any record they emit meanwhile joins the
    batch; then it commits the whole batch in one transaction and wakes the others.
    Concurrent invocations share commits while each still waits for its own record to be
    durable; a lone record costs one pass of the loop. A failed commit fails every record
    of its batch (the transaction is all or nothing); a cancelled emitter's record is
    committed all the same.

    The pass is paid even when nothing else is ready: asyncio has no public way to tell,
    and guessing from the invocations under way misses the requests that are ready but
    not yet invoking (16 clients of a no-wait handler: 2 commits per invocation instead
    of 0.125).

    Batches are kept per thread: a thread runs one event loop at a time, so a batch whose
    loop is running is the emitter's loop's. Only the opener of a batch asks asyncio for
    the running loop (`get_running_loop` makes a getpid system call); a record joining
    the batch does not.
    """

    def __init__(self, ledger: SyncLedger) -> None:
        self.ledger = ledger
        self.commits = 0
        self._batches: dict[int, _Batch] = {}  # by thread id

    def prepare(self) -> None:
        """Open the ledger and create its schema now; LedgerError says why it cannot."""
        self.ledger.prepare()

    async def check(self) -> None:
        """`prepare`, from the event loop (the readiness probe of a ledger that failed)."""
        self.ledger.prepare()

    async def emit(self, event_type: str, payload: dict[str, Any]) -> str:
        return await self.emit_record(Record.build(event_type, payload))

    async def emit_record(
        self, record: Record, settlement: Settlement | None = None, *, again: bool = False
    ) -> str:
        """Commit `record`; `again` for one handed over after a failure (stored once)."""
        if settlement is not None:  # a SQLite ledger shares no database with a claim
            raise LedgerError("the SQLite ledger cannot settle an idempotency claim")
        if again:
            self.ledger.append([record], dedupe=True)
            self.commits += 1
            return record.cid
        await self.emit_records((record,))
        return record.cid

    async def emit_records(self, records: Sequence[Record]) -> None:
        """Commit `records`, in order, in one group commit; return once they are durable."""
        thread = threading.get_ident()
        batch = self._batches.get(thread)
        if batch is not None and batch.loop.is_running():  # a batch is open: wait for its commit
            done: asyncio.Future[None] = batch.loop.create_future()
            batch.joined.extend((record, done) for record in records)
            await done
            return
        batch = self._batches[thread] = _Batch(asyncio.get_running_loop())
        try:
            await asyncio.sleep(0)  # every task ready now runs before this one resumes
        finally:  # cancelled or not, the batch is committed: the others wait for it
            if self._batches.get(thread) is batch:
                del self._batches[thread]
            self._commit(records, batch.joined)

    async def holds(self, cid: str) -> bool:
        """Whether the ledger holds the record `cid` (a lookup by key, in this thread)."""
        return self.ledger.get(cid) is not None

    def emit_record_now(self, record: Record) -> str:
        """Commit one record now, in the caller's thread (no batch)."""
        self.ledger.append([record])
        self.commits += 1
        return record.cid

    def _commit(
        self, first: Sequence[Record], batch: list[tuple[Record, asyncio.Future[None]]]
    ) -> None:
        """Commit the opener's records and the batch that joined them; raise the ledger's
        error, if any, after handing it to every waiter."""
        try:
            self.ledger.append([*first, *(record for record, _ in batch)])
        except Exception as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            raise
        self.commits += 1
        for _, done in batch:
            if not done.done():  # a cancelled waiter: its record is committed all the same
                done.set_result(None)


class AsyncLedger(Protocol):
    """A ledger whose appends are network I/O awaited on the event loop (PostgreSQL).
    It can have `commit_lanes` commits in flight at once, one per `lane`."""

    commit_lanes: int

    async def append_async(
        self,
        records: Sequence[Record],
        lane: int = 0,
        settlements: Sequence[Settlement] = (),
        *,
        dedupe: bool = False,
    ) -> None: ...

    def get(self, cid: str) -> Record | None: ...

    def prepare(self) -> None: ...

    def close(self) -> None: ...


class _Waiting:
    __slots__ = ("committers", "dedupe", "free_lanes", "lanes", "records", "settlements")

    def __init__(self, lanes: int) -> None:
        self.records: list[tuple[Record, asyncio.Future[None]]] = []
        self.settlements: list[Settlement] = []  # committed with the records they wait with
        self.dedupe = False  # a record handed over again waits: skip what any log stores
        self.lanes = lanes
        self.free_lanes = list(range(lanes - 1, -1, -1))  # lane 0 is taken first
        self.committers: set[asyncio.Task[None]] = set()  # referenced until they finish


class AsyncLedgerChronicle:
    """Writes records to a ledger over the network; `emit` returns once the record is committed.

    Group commit: up to `ledger.commit_lanes` commits are in flight per event loop at once;
    records emitted while they are all in flight wait together and go in the next commit,
    so concurrent invocations share commits (and the database can share one disk flush
    between the lanes' commits), while a lone invocation pays one round trip per record.
    A failed commit fails every record of its batch (the statement is all or nothing).
    """

    def __init__(self, ledger: AsyncLedger) -> None:
        self.ledger = ledger
        self.commits = 0
        self._waiting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waiting]
        self._waiting = weakref.WeakKeyDictionary()

    def prepare(self) -> None:
        """Reach the database and create the schema now; LedgerError says why it cannot."""
        self.ledger.prepare()

    async def check(self) -> None:
        """`prepare` in a thread: a database that does not answer must not stall the loop."""
        await asyncio.to_thread(self.ledger.prepare)

    async def emit(self, event_type: str, payload: dict[str, Any]) -> str:
        return await self.emit_record(Record.build(event_type, payload))

    async def holds(self, cid: str) -> bool:
        """Whether the ledger holds the record `cid` (read in a thread: a database that does
        not answer must not stall the loop)."""
        return await asyncio.to_thread(self.ledger.get, cid) is not None

    async def emit_record(
        self, record: Record, settlement: Settlement | None = None, *, again: bool = False
    ) -> str:
        """Commit `record` (and `settlement`, in the same statement); the CID once durable.
        `again`: handed over again after a failure, its first commit perhaps landed in
        another lane's log, so the commit skips CIDs stored in any log."""
        await self._committed((record,), settlement, again)
        return record.cid

    async def emit_records(self, records: Sequence[Record]) -> None:
        """Commit `records`, in order, in one statement; return once they are durable."""
        await self._committed(records)

    async def _committed(
        self, records: Sequence[Record], settlement: Settlement | None = None, again: bool = False
    ) -> None:
        loop = asyncio.get_running_loop()
        waiting = self._waiting.get(loop)
        if waiting is None:
            waiting = self._waiting[loop] = _Waiting(max(1, self.ledger.commit_lanes))
        done: asyncio.Future[None] = loop.create_future()
        waiting.records.extend((record, done) for record in records)
        if settlement is not None:
            waiting.settlements.append(settlement)
        if again:
            waiting.dedupe = True
        if waiting.free_lanes:
            lane = waiting.free_lanes.pop()
            committer = loop.create_task(self._commit_while_waiting(waiting, lane))
            waiting.committers.add(committer)
            committer.add_done_callback(waiting.committers.discard)
        await done

    async def _commit_while_waiting(self, waiting: _Waiting, lane: int) -> None:
        batch: list[tuple[Record, asyncio.Future[None]]] = []
        try:
            while waiting.records:
                batch, waiting.records = waiting.records, []
                settlements, waiting.settlements = waiting.settlements, []
                dedupe, waiting.dedupe = waiting.dedupe, False
                records = [record for record, _ in batch]
                try:
                    await self.ledger.append_async(records, lane, settlements, dedupe=dedupe)
                except Exception as exc:
                    _settle(batch, exc)
                    continue
                self.commits += 1
                _settle(batch, None)  # a cancelled waiter: its record is committed all the same
                batch = []
        except BaseException:  # the committer itself was cancelled: nobody may wait forever
            cancelled = LedgerError("the Chronicle commit was cancelled")
            _settle(batch, cancelled)
            if len(waiting.free_lanes) == waiting.lanes - 1:  # no other lane will take them
                _settle(waiting.records, cancelled)
                waiting.records, waiting.settlements = [], []
            raise
        finally:
            waiting.free_lanes.append(lane)


def _settle(batch: list[tuple[Record, asyncio.Future[None]]], exc: Exception | None) -> None:
    for _, done in batch:
        if done.done():
            continue
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)


class MemoryChronicle:
    """Keeps records in a list: for tests and for `--no-chronicle` dry runs."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def emit(self, event_type: str, payload: dict[str, Any]) -> str:
        return await self.emit_record(Record.build(event_type, payload))

    async def emit_record(self, record: Record) -> str:
        self.records.append(record)
        return record.cid
