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

    Group commit: when other work is ready to run on the event loop, a record is queued,
    and one callback at the end of the loop's current pass commits everything queued in
    one transaction; concurrent invocations share commits while each still waits for its
    own record to be durable. With nothing else ready there is nobody to share with, and
    the record is committed at once (no extra pass of the loop). A failed commit fails
    every record of its batch (the transaction is all or nothing).
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.commits = 0
        self._batches: dict[asyncio.AbstractEventLoop, list[tuple[Record, asyncio.Future[None]]]]
        self._batches = {}

    def prepare(self) -> None:
        """Open the ledger and create its schema now; LedgerError says why it cannot."""
        self.ledger.prepare()

    async def check(self) -> None:
        """`prepare`, from the event loop (the readiness probe of a ledger that failed)."""
        self.ledger.prepare()

    async def emit(self, event_type: str, payload: dict[str, Any]) -> str:
        return await self.emit_record(Record.build(event_type, payload))

    async def emit_record(self, record: Record) -> str:
        loop = asyncio.get_running_loop()
        batch = self._batches.get(loop)
        if batch is None and not getattr(loop, "_ready", True):  # asyncio's ready queue
            return self.emit_record_now(record)
        if batch is None:
            batch = self._batches[loop] = []
            loop.call_soon(self._commit, loop)
        done: asyncio.Future[None] = loop.create_future()
        batch.append((record, done))
        await done
        return record.cid

    def emit_record_now(self, record: Record) -> str:
        """Commit one record now, in the caller's thread (no batch)."""
        self.ledger.append([record])
        self.commits += 1
        return record.cid

    def _commit(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._batches.pop(loop)
        try:
            self.ledger.append([record for record, _ in batch])
        except Exception as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
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
