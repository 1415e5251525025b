"""Chronicle clients: where records go.

A chronicle client is any object with `async emit(event_type, payload)`. Clients that
also offer `emit_record(record)` receive the already canonicalised `Record`, which
saves a second canonicalisation; the runtime prefers it when present.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, runtime_checkable

from govfn.chronicle.ledger import Ledger
from govfn.chronicle.records import Record


@runtime_checkable
class ChronicleClient(Protocol):
    async def emit(self, event_type: str, payload: dict[str, Any]) -> Any: ...


async def deliver(client: ChronicleClient, record: Record) -> None:
    """Hand one record to a client, through `emit_record` when it has one."""
    emit_record = getattr(client, "emit_record", None)
    if emit_record is not None:
        await emit_record(record)
    else:
        await client.emit(record.type, record.payload)


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
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.commits = 0
        self._batches: dict[asyncio.AbstractEventLoop, list[tuple[Record, asyncio.Future[None]]]]
        self._batches = {}

    async def emit(self, event_type: str, payload: dict[str, Any]) -> str:
        return await self.emit_record(Record.build(event_type, payload))

    async def emit_record(self, record: Record) -> str:
        loop = asyncio.get_running_loop()
        batch = self._batches.get(loop)
        if batch is not None:  # a batch is open: wait for its commit
            done: asyncio.Future[None] = loop.create_future()
            batch.append((record, done))
            await done
            return record.cid
        batch = self._batches[loop] = []
        try:
            await asyncio.sleep(0)  # every task ready now runs before this one resumes
        finally:  # cancelled or not, the batch is committed: the others wait for it
            del self._batches[loop]
            self._commit(record, batch)
        return record.cid

    def emit_record_now(self, record: Record) -> str:
        """Commit one record now, in the caller's thread (no batch)."""
        self.ledger.append([record])
        self.commits += 1
        return record.cid

    def _commit(self, first: Record, batch: list[tuple[Record, asyncio.Future[None]]]) -> None:
        """Commit `first` and the batch that joined it; raise the ledger's error, if any,
        after handing it to every waiter."""
        try:
            self.ledger.append([first, *(record for record, _ in batch)])
        except Exception as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            raise
        self.commits += 1
        for _, done in batch:
            if not done.done():  # a cancelled waiter: its record is committed all the same
                done.set_result(None)


class MemoryChronicle:
    """Keeps records in a list: for tests and for `--no-chronicle` dry runs."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def emit(self, event_type: str, payload: dict[str, Any]) -> str:
        return await self.emit_record(Record.build(event_type, payload))

    async def emit_record(self, record: Record) -> str:
        self.records.append(record)
        return record.cid
