"""How a claimed invocation's outcome meets its records: the COMPLETED record emitted with
the claim's settlement (or after the outcome is noted beside the claim), a replay answered
only when the record it names is durable, a claim taken over from a dead holder settled
from the record that holder left, and this process's own pending claim settled by handing
its kept records over. `runtime.FunctionRuntime` uses one `ClaimOutcomes`.
"""

from __future__ import annotations

import logging

from govfn.chronicle.backstop import Backstop, Delivery
from govfn.chronicle.records import Record
from govfn.function import FunctionResult
from govfn.idempotency import IdempotencyStore, IdempotencyUnavailable
from govfn.outcome import ErrorKind

log = logging.getLogger("govfn.runtime")


class ClaimOutcomes:
    def __init__(self, backstop: Backstop | None) -> None:
        self.backstop = backstop

    async def record(
        self, store: IdempotencyStore, key: str, result: FunctionResult, completed: Record
    ) -> bool:
        """Emit a claimed success's COMPLETED record and settle the claim with it: in the
        same commit when the store shares the ledger's database, otherwise noted beside the
        claim first (a holder that dies in between leaves the answer to whoever takes the
        claim over), then marked done. A record only memory holds settles the claim once
        it is handed over; until then the invocation is not acknowledged."""
        assert self.backstop is not None
        outcome = result.to_dict()
        settlement = store.settlement(key, outcome)
        if settlement is None:
            await store.note_outcome(key, outcome, completed.cid)

        async def settle() -> None:
            if settlement is not None:
                store.settled(key)  # committed with its record
            else:
                await store.complete(key, outcome)

        delivery = await self.backstop.deliver(completed, settlement, settle)
        if delivery is Delivery.DELIVERED:
            await settle()
        elif delivery is Delivery.SPOOLED:  # the spool holds the record (and its settlement)
            await store.complete(key, outcome)
        # else memory alone holds the record: the claim stays held (its lease renewed) until
        # a flush hands the record over and `settle` runs; if this process dies first, the
        # claim lapses and a later delivery runs the function again, as nothing durable
        # says it ran.
        return delivery.durable

    async def settled_here(self, store: IdempotencyStore, key: str) -> bool:
        """Whether a claim in progress was this process's, waiting for a record only its
        memory kept, and handing kept records over has now settled it."""
        if self.backstop is None or not store.holds(key):
            return False
        await self.backstop.flush(force=True)
        return not store.holds(key)

    async def replay(self, result: FunctionResult) -> FunctionResult:
        """The stored result of an earlier run, if its COMPLETED record is durable: a
        delivery is never acknowledged with lineage that only a process's memory holds
        (that process may die before it hands the record over). Otherwise UNAVAILABLE."""
        cid = result.lineage_cid
        if cid is None or self.backstop is None:
            return result
        try:
            durable = await self.backstop.durable(cid)
        except Exception as exc:
            log.error("cannot tell whether record %s is durable: %s", cid, exc)
            durable = False
        if durable:
            return result
        return FunctionResult.failure(
            "the earlier run's record is not durable yet; retry later",
            ErrorKind.UNAVAILABLE,
            function_id=result.function_id,
            invocation_id=result.invocation_id,
        )

    async def recorded(self, cid: str) -> bool:
        """Whether the Chronicle holds the record `cid` (asked when a claim is taken over
        from a holder that died after noting its outcome)."""
        if self.backstop is None:
            return False
        try:
            return await self.backstop.holds(cid)
        except Exception as exc:
            raise IdempotencyUnavailable(
                f"cannot read the Chronicle to settle a claim taken over: {exc}"
            ) from exc
