"""Chronicle clients: where records go.

A chronicle client is any object with `async emit(event_type, payload)`. Clients that
also offer `emit_record(record)` receive the already canonicalised `Record`, which
saves a second canonicalisation; the runtime prefers it when present.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
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
    """Writes records to the embedded ledger; `emit` returns once the record is committed."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def emit(self, event_type: str, payload: dict[str, Any]) -> str:
        record = Record.build(event_type, payload)
        self.ledger.append([record])
        return record.cid

    async def emit_record(self, record: Record) -> str:
        self.ledger.append([record])
        return record.cid

    def emit_record_sync(self, record: Record) -> str:
        self.ledger.append([record])
        return record.cid


class FanOutChronicle:
    """Sends every record to several clients; fails if any of them fails."""

    def __init__(self, clients: Sequence[ChronicleClient]) -> None:
        self.clients = list(clients)

    async def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        await self.emit_record(Record.build(event_type, payload))

    async def emit_record(self, record: Record) -> None:
        results = await asyncio.gather(
            *(deliver(client, record) for client in self.clients), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result


class MemoryChronicle:
    """Keeps records in a list: for tests and for `--no-chronicle` dry runs."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def emit(self, event_type: str, payload: dict[str, Any]) -> str:
        return await self.emit_record(Record.build(event_type, payload))

    async def emit_record(self, record: Record) -> str:
        self.records.append(record)
        return record.cid
