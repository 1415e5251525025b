"""The backstop: no Chronicle failure breaks an invocation or loses its record.

When a client raises, the record is kept in memory *and* appended to this process's
spool file (`spool-<pid>.jsonl`). Kept records are handed over again, in order and
before any new record, once the retry delay has passed; the delay doubles up to a cap
while the client keeps failing. A process that dies with records kept leaves its spool
file behind; the next backstop that starts in the same spool directory adopts it.
Records are idempotent by CID, so a record delivered twice (once before a crash and
once from the spool) is stored once by the ledger and carries the same id to a sink.

`deliver` says what became of a record (`Delivery`): delivered, written to the spool, or
held in memory only (no spool, or the spool failed too), which is not durable: the runtime
then refuses the invocation rather than acknowledge lineage nothing keeps, and `usable`
turns false until `check()` (or a delivery) finds the client taking records again. A record
may carry the settlement of an idempotency claim (`settlement.py`): it is kept, spooled
and handed over with its record, so the two are committed together whenever that is.
"""

from __future__ import annotations

import enum
import fcntl
import inspect
import json
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from govfn.chronicle.client import ChronicleClient
from govfn.chronicle.records import Record
from govfn.chronicle.settlement import Settlement

log = logging.getLogger("govfn.chronicle")

OnDurable = Callable[[], Awaitable[None]]


class Delivery(enum.Enum):
    DELIVERED = "delivered"  # the client took it
    SPOOLED = "spooled"  # kept, and on disk in the spool
    IN_MEMORY = "in memory"  # kept in memory only: not durable

    @property
    def durable(self) -> bool:
        return self is not Delivery.IN_MEMORY


_FIRST_DELAY_S = 0.05
_MAX_DELAY_S = 5.0


class Backstop:
    def __init__(self, client: ChronicleClient, spool_dir: str | os.PathLike[str] | None) -> None:
        self.client = client
        # The client's `emit_record` (it takes the canonical Record as it is), found once,
        # and whether it can be told a record is handed over again (stored once).
        self._emit_record = getattr(client, "emit_record", None)
        self._emit_records = getattr(client, "emit_records", None)  # several in one commit
        self._says_again = self._emit_record is not None and "again" in (
            inspect.signature(self._emit_record).parameters
        )
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self.failures = 0
        self._kept: deque[Record] = deque()
        self._settlements: dict[str, Settlement] = {}  # by the CID of the record carrying it
        self._in_memory: set[str] = set()  # CIDs of kept records no spool holds
        self._on_durable: dict[str, OnDurable] = {}  # awaited once such a record is handed over
        self._retry_at = 0.0
        self._delay = _FIRST_DELAY_S
        self._adopted: list[tuple[Path, TextIO]] = []  # each held with its lock
        self._handle: TextIO | None = None  # this process's spool, locked while it lives
        self._handle_pid = 0
        self.usable = True
        self._flushing = False
        if self.spool_dir is not None:
            self._adopt_orphans()

    @property
    def pending(self) -> int:
        return len(self._kept)

    async def emit(self, record: Record) -> bool:
        """Deliver `record`, or keep it; True when it is durable (delivered or spooled)."""
        return (await self.deliver(record)).durable

    async def emit_together(self, records: Sequence[Record]) -> bool:
        """Deliver `records` in order and in one commit (where the client can), or keep
        every one of them; True when all are durable (delivered or spooled)."""
        if self._emit_records is None or self._kept:
            return all([await self.emit(record) for record in records])
        try:
            await self._emit_records(records)
        except Exception as exc:
            self._failed(exc)
            return all([self._keep(record).durable for record in records])
        self.usable = True
        return True

    async def deliver(
        self,
        record: Record,
        settlement: Settlement | None = None,
        on_durable: OnDurable | None = None,
    ) -> Delivery:
        """Deliver `record` (with `settlement`, committed together), or keep both. When only
        memory keeps it, `on_durable` is awaited once a later flush has handed it over."""
        if settlement is not None:
            self._settlements[record.cid] = settlement
        if self._kept and not await self.flush():
            return self._kept_until_durable(record, on_durable)
        try:
            await self._deliver(record)
        except Exception as exc:
            self._failed(exc)
            return self._kept_until_durable(record, on_durable)
        self._settlements.pop(record.cid, None)
        self.usable = True
        return Delivery.DELIVERED

    def _kept_until_durable(self, record: Record, on_durable: OnDurable | None) -> Delivery:
        delivery = self._keep(record)
        if delivery is Delivery.IN_MEMORY and on_durable is not None:
            self._on_durable[record.cid] = on_durable
        return delivery

    def withdraw(self, record: Record) -> None:
        """Forget a kept record whose invocation was refused (it never ran)."""
        for index in range(len(self._kept) - 1, -1, -1):
            if self._kept[index] is record:
                del self._kept[index]
                self._settlements.pop(record.cid, None)
                self._in_memory.discard(record.cid)
                self._on_durable.pop(record.cid, None)
                return

    async def durable(self, cid: str) -> bool:
        """Whether the record `cid` may be acknowledged: spooled here, or (after handing
        kept records over, when memory alone holds it) in the client's ledger. A client
        with no ledger to read is trusted with what it took. Raises what the ledger raises."""
        if cid in self._in_memory:
            await self.flush(force=True)
            return cid not in self._in_memory
        if any(record.cid == cid for record in self._kept):
            return True  # in the spool
        holds = getattr(self.client, "holds", None)
        return True if holds is None else bool(await holds(cid))

    async def holds(self, cid: str) -> bool:
        """Whether the record with `cid` is durable: kept here, or in the client's ledger
        (read in a thread). Raises what the ledger raises when it cannot be read."""
        if any(record.cid == cid for record in self._kept):
            return True
        holds = getattr(self.client, "holds", None)
        return False if holds is None else bool(await holds(cid))

    async def check(self) -> bool:
        """Ask the client whether it takes records (its `check()`, when it has one), then
        hand kept records over; True, and `usable`, when both succeed."""
        probe = getattr(self.client, "check", None)
        try:
            if probe is not None:
                await probe()
        except Exception as exc:
            log.error("chronicle unusable: %s", exc)
            self.usable = False
            return False
        self.usable = await self.flush(force=True)
        return self.usable

    async def flush(self, *, force: bool = False) -> bool:
        """Hand kept records over again; True when none is left. One flush at a time: a
        second caller while one runs gets False (two would hand the same record over twice)."""
        if not self._kept:
            return True
        if self._flushing or (not force and time.monotonic() < self._retry_at):
            return False
        self._flushing = True
        try:
            while self._kept:
                record = self._kept[0]
                try:
                    await self._deliver(record, again=True)
                except Exception as exc:
                    self._failed(exc)
                    return False
                if self._kept and self._kept[0] is record:
                    self._kept.popleft()
                    self._settlements.pop(record.cid, None)
                    self._in_memory.discard(record.cid)
                    done = self._on_durable.pop(record.cid, None)
                    if done is not None:
                        await done()
        finally:
            self._flushing = False
        self._delay = _FIRST_DELAY_S
        self.usable = True
        self._forget_spool()
        log.info("chronicle recovered: kept records delivered")
        return True

    def _deliver(self, record: Record, *, again: bool = False) -> Awaitable[Any]:
        """The client's own awaitable for `record` (no coroutine of the backstop's around it).
        `again`: a kept record, whose first delivery may have been stored after all."""
        settlement = self._settlements.get(record.cid) if self._settlements else None
        if self._says_again and (settlement is not None or again):
            return self.client.emit_record(record, settlement, again=again)  # type: ignore[attr-defined,no-any-return]
        if settlement is not None:
            return self.client.emit_record(record, settlement)  # type: ignore[attr-defined,no-any-return]
        if self._emit_record is not None:
            return self._emit_record(record)  # type: ignore[no-any-return]
        return self.client.emit(record.type, record.payload)

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, _MAX_DELAY_S)
        log.warning(
            "chronicle emit failed (%s: %s); %d record(s) kept",
            type(exc).__name__,
            exc,
            len(self._kept) + 1,
        )

    # -- the spool ------------------------------------------------------------------
    #
    # A process appends to `spool-<pid>.jsonl` through one handle it keeps open with an
    # exclusive flock for as long as it lives: the lock, not the pid, says the owner is alive
    # (a dead process's locks are gone even while it is a zombie, and a restarted container
    # may give a new process the old one's pid). An adopter takes a spool whose lock it can
    # get, renames it, and keeps that lock until it has handed the records over.

    def close(self) -> None:
        """Let go of the spool files (and their locks): what they hold stays on disk, for
        the next backstop in this folder to adopt."""
        if self._handle is not None and self._handle_pid == os.getpid():
            self._handle.close()
        self._handle = None
        for _, handle in self._adopted:
            handle.close()
        self._adopted = []

    def __del__(self) -> None:
        self.close()

    def _spool_file(self) -> Path | None:
        if self.spool_dir is None:
            return None
        return self.spool_dir / f"spool-{os.getpid()}.jsonl"

    def _spool_handle(self, spool: Path) -> TextIO:
        if self._handle is None or self._handle_pid != os.getpid():
            spool.parent.mkdir(parents=True, exist_ok=True)
            handle = spool.open("a", encoding="utf-8")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            except OSError:
                handle.close()
                raise
            self._handle, self._handle_pid = handle, os.getpid()
        return self._handle

    def _keep(self, record: Record) -> Delivery:
        """Keep `record` (and its settlement) in memory and in the spool."""
        self._kept.append(record)
        spool = self._spool_file()
        if spool is None:
            self.usable = False
            self._in_memory.add(record.cid)
            return Delivery.IN_MEMORY
        line = record.to_json_line()
        settlement = self._settlements.get(record.cid)
        if settlement is not None:
            line = f'{line[:-1]},"settlement":{json.dumps(settlement.to_dict())}}}'
        try:
            handle = self._spool_handle(spool)
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as exc:
            # The record stays in memory; the log line is the last copy outside the process.
            log.error("chronicle spool write failed (%s); record %s", exc, line)
            self.usable = False
            self._in_memory.add(record.cid)
            return Delivery.IN_MEMORY
        return Delivery.SPOOLED

    def _forget_spool(self) -> None:
        spool = self._spool_file()
        if spool is not None and self._handle is not None and self._handle_pid == os.getpid():
            spool.unlink(missing_ok=True)
            self._handle.close()  # the lock goes with it
            self._handle = None
        for path, handle in self._adopted:
            path.unlink(missing_ok=True)
            handle.close()
        self._adopted.clear()

    def _adopt_orphans(self) -> None:
        assert self.spool_dir is not None
        if not self.spool_dir.is_dir():
            return
        for path in sorted(self.spool_dir.glob("spool-*.jsonl")):
            try:
                handle = path.open("r", encoding="utf-8")
            except OSError:
                continue  # adopted meanwhile by another process
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # its owner (or another adopter) is alive and holds it
                handle.close()
                continue
            claimed = path.with_name(f"spool-{os.getpid()}.adopted-{os.urandom(6).hex()}.jsonl")
            try:
                path.rename(claimed)
            except OSError:
                handle.close()
                continue
            self._adopted.append((claimed, handle))
            for line in handle.read().splitlines():
                try:
                    entry = json.loads(line)
                    record = Record.build(entry["type"], entry["payload"])
                    if "settlement" in entry:
                        self._settlements[record.cid] = Settlement.from_dict(entry["settlement"])
                except (ValueError, KeyError, TypeError):
                    log.error("chronicle spool %s: unreadable line skipped: %r", claimed, line)
                    continue
                self._kept.append(record)
        if self._kept:
            log.warning(
                "chronicle: adopted %d record(s) from orphaned spool files", len(self._kept)
            )
