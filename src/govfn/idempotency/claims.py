"""What every idempotency store shares: the claim, its key, and the store's contract.

    claim → "run"          first delivery (or the previous holder is gone): run the handler
          → "replay"       already done: answer with the stored result, run nothing
          → "in_progress"  another delivery is running it now: the broker should retry later
          → "conflict"     same key, different payload: refuse, never retry

How a success is settled depends on where the Chronicle lives:

- **the same PostgreSQL database** (`settlement`): the claim's outcome travels with the
  FUNCTION_COMPLETED record and is committed by the statement that appends it (and, when
  the ledger fails, kept and spooled with it): the record is durable exactly when the
  outcome is. `settled` then tells the store the claim is no longer its to keep alive.
- **elsewhere** (a SQLite ledger, a separate `GOVFN_IDEMPOTENCY`): `note_outcome` stores
  the result beside the claim, with the CID of the COMPLETED record about to be emitted,
  before it is; `complete` marks it done once the record is durable. A claim taken over
  from a holder that died in between asks `recorded(cid)`: when the ledger holds the
  record, the noted result is the answer and the function does not run again.

A failure releases the key (`release`) so the broker's retry can run. A holder renews the
lease of every claim it holds (`Heartbeat`, every fifth of the lease) while its handler
runs, so a claim whose holder died is taken over one lease later (`LEASE_S`, seconds, not
the function's whole timeout). Stored results expire after `expiry_s`. A store that cannot
be reached raises `IdempotencyUnavailable` from `claim`: without a claim the function must
not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

from govfn.chronicle.settlement import Settlement

DEFAULT_EXPIRY_S = 7 * 24 * 3600.0
LEASE_S = 10.0
MIN_LEASE_S = LEASE_S  # the name older callers use

log = logging.getLogger("govfn.idempotency")

Recorded = Callable[[str], Awaitable[bool]]  # does the ledger hold the record with this CID?


class Claim(NamedTuple):
    status: str  # "run" | "replay" | "in_progress" | "conflict"
    key: str
    result: dict[str, Any] | None = None


class IdempotencyUnavailable(Exception):
    """The store cannot be reached or written; the message names it (never a password)."""


def idempotency_key(function_id: str, source: str, event_id: str) -> str:
    return hashlib.sha256("\x1f".join((function_id, source, event_id)).encode()).hexdigest()


class IdempotencyStore(Protocol):
    """What the runtime needs of a store. `complete`, `release` and `note_outcome` never
    raise for a store failure: the store keeps the outcome and writes it when it can, or
    logs it."""

    expiry_s: float

    def prepare(self) -> None:
        """Reach the store and create its schema now; IdempotencyUnavailable if it cannot."""

    async def check(self) -> None:
        """`prepare` from the event loop."""

    async def claim(
        self,
        key: str,
        fingerprint: str,
        lease_s: float | None = None,
        *,
        recorded: Recorded | None = None,
    ) -> Claim: ...

    def settlement(self, key: str, result: dict[str, Any]) -> Settlement | None:
        """The outcome to commit with the COMPLETED record, when the ledger shares this
        store's database; None otherwise."""

    def settled(self, key: str) -> None:
        """The settlement of `key` was committed with its record: nothing more to write."""

    def holds(self, key: str) -> bool:
        """Whether this process holds the claim of `key` (taken, not yet settled)."""

    async def note_outcome(self, key: str, result: dict[str, Any], record_cid: str) -> None: ...

    async def complete(self, key: str, result: dict[str, Any]) -> None: ...

    async def release(self, key: str) -> None: ...

    async def flush(self) -> bool:
        """Write outcomes kept while the store failed; True when none is left."""

    async def purge_expired(self) -> int: ...

    async def aclose(self) -> None: ...


class Heartbeat:
    """Renews the leases of the claims a process holds, every fifth of the lease, while it
    holds any: `renew(holders)` is the store's one statement for all of them. A renewal that
    fails is tried again a tenth of a beat later, so that a few broken connections in a row
    do not let a live holder's lease lapse."""

    def __init__(self, lease_s: float, renew: Callable[[list[str]], Awaitable[None]]) -> None:
        self.lease_s = lease_s
        self.holders: dict[str, str] = {}  # holder -> key
        self._renew = renew
        self._task: asyncio.Task[None] | None = None

    def hold(self, key: str, holder: str) -> None:
        self.holders[holder] = key
        loop = asyncio.get_running_loop()
        task = self._task
        if self.lease_s > 0 and (task is None or task.done() or task.get_loop() is not loop):
            self._task = loop.create_task(self._beat())

    def drop(self, holder: str) -> None:
        self.holders.pop(holder, None)

    async def _beat(self) -> None:
        beat = self.lease_s / 5
        wait = beat
        while self.holders:
            await asyncio.sleep(wait)
            holders = list(self.holders)
            if not holders:
                return
            try:
                await self._renew(holders)
                wait = beat
            except Exception as exc:  # tried again soon; the lease may lapse meanwhile
                log.warning("idempotency: could not renew %d claim(s): %s", len(holders), exc)
                wait = beat / 10

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
