"""FunctionRuntime: invoke registered functions and record their lineage in the Chronicle.

    invoke(id, event, context)
      ├─ unknown id / missing GSAP context  → failed result, nothing executed, nothing recorded
      ├─ data that does not fit the handler's event type → failed result (INVALID_DATA), likewise
      ├─ FUNCTION_INVOKED (0x2A01)          → recorded before the handler runs (a `pure`
      │                                       function's: with FUNCTION_COMPLETED, one commit)
      ├─ handler (timeout enforced)         → exception / timeout become a failed result
      └─ FUNCTION_COMPLETED (0x2A02)        → recorded after; its CID is the result's lineage_cid;
                                              it names the reply event (id, source, data CID)
                                              that the invocations it triggers record as theirs

Records go through a `Backstop`, so a Chronicle client that raises never breaks an
invocation and never loses the record. Functions declared `idempotent` run once per
trigger event (source + id) when the runtime has an `IdempotencyStore`: a success's
outcome is committed with its FUNCTION_COMPLETED record (in the same statement when the
store is in the ledger's PostgreSQL database; noted beside the claim first otherwise), so
once that record is durable no later delivery runs the function again, whatever dies when
(`govfn.idempotency.claims` tells how).

What a failing dependency makes of an invocation (ErrorKind.UNAVAILABLE, which the
receivers answer 503 with Retry-After so that the broker retries):
  idempotency store unreachable                → the handler does not run (no claim)
  FUNCTION_INVOKED neither delivered nor spooled → the handler does not run (a pure
      function's ran, with no effect beyond its result, which is not acknowledged)
  FUNCTION_COMPLETED neither delivered nor spooled → the outcome stands (an idempotent
      function's result is stored) but is not acknowledged
`usable` is false while the Chronicle takes no records or a store that failed at start
has not answered since; `check()` asks them again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from govfn.chronicle.backstop import Backstop
from govfn.chronicle.cid import content_cid
from govfn.chronicle.client import ChronicleClient
from govfn.chronicle.records import Record
from govfn.claim_outcomes import ClaimOutcomes
from govfn.errors import EventDataError
from govfn.execution import execute, new_invocation_id
from govfn.function import FunctionContext, FunctionPlugin, FunctionResult
from govfn.idempotency import Claim, IdempotencyStore, IdempotencyUnavailable, idempotency_key
from govfn.outcome import ErrorKind
from govfn.registry import FunctionRegistry

log = logging.getLogger("govfn.runtime")

Observer = Callable[[FunctionPlugin | None, FunctionContext, FunctionResult], None]
# Called when an invocation starts, with the function id and the context (invocation id
# set); returns what to call when it ends, with the result (None when it was cancelled).
# Tracing opens a span here, current while the handler runs.
InvocationEnd = Callable[[FunctionResult | None], None]
InvocationStart = Callable[[str, FunctionContext], InvocationEnd]


UNPARSED: Any = object()  # `invoke(argument=...)` not given: the runtime reads the event


class FunctionRuntime:
    def __init__(
        self,
        registry: FunctionRegistry,
        chronicle_client: ChronicleClient | None = None,
        *,
        spool_dir: str | None = None,
        idempotency: IdempotencyStore | None = None,
    ) -> None:
        self.registry = registry
        self.backstop = Backstop(chronicle_client, spool_dir) if chronicle_client else None
        self.idempotency = idempotency
        self.outcomes = ClaimOutcomes(self.backstop)
        self.observers: list[Observer] = []
        self.on_start: list[InvocationStart] = []
        self._store_answered = True

    # -- dependencies -----------------------------------------------------------------

    def prepare(self) -> bool:
        """Reach the Chronicle and the idempotency store now (say, before forking workers)
        and create their schemas; False, with the reason logged, when one cannot be used.
        `usable` then stays false until `check()` finds it answering."""
        ok = True
        prepare = getattr(self.backstop.client, "prepare", None) if self.backstop else None
        if self.backstop is not None and prepare is not None:
            try:
                prepare()
            except Exception as exc:
                log.error("%s; not ready until it answers", exc)
                self.backstop.usable = ok = False
        if self.idempotency is not None:
            try:
                self.idempotency.prepare()
            except IdempotencyUnavailable as exc:
                log.error("%s; not ready until it answers", exc)
                self._store_answered = ok = False
        return ok

    @property
    def usable(self) -> bool:
        return (self.backstop is None or self.backstop.usable) and self._store_answered

    async def check(self) -> bool:
        """Ask the dependencies that are not usable again; True when all of them are."""
        if self.backstop is not None and not self.backstop.usable:
            await self.backstop.check()
        if self.idempotency is not None and not self._store_answered:
            try:
                await self.idempotency.check()
                self._store_answered = True
            except IdempotencyUnavailable as exc:
                log.error("%s; not ready until it answers", exc)
        return self.usable

    async def invoke(
        self,
        function_id: str,
        event: Any,
        context: FunctionContext | None = None,
        *,
        argument: Any = UNPARSED,
    ) -> FunctionResult:
        """Run `function_id` on `event` (JSON data). `argument`, when given, is what the
        handler receives instead: the instance of its event type the caller built already
        from `event` (the receivers check every event before any function runs)."""
        context = context or FunctionContext()
        if context.invocation_id is None:
            context = context.with_invocation_id(new_invocation_id())
        if not self.on_start:
            return await self._invoke(function_id, event, context, argument)
        ends = self._started(function_id, context)
        result: FunctionResult | None = None
        try:
            result = await self._invoke(function_id, event, context, argument)
            return result
        finally:
            for end in reversed(ends):
                try:
                    end(result)
                except Exception:
                    log.exception("invocation end hook %r failed", end)

    async def _invoke(
        self, function_id: str, event: Any, context: FunctionContext, argument: Any
    ) -> FunctionResult:
        plugin = self.registry.get(function_id)
        invalid: EventDataError | None = None
        if argument is UNPARSED and plugin is not None:
            argument = event
            if plugin.event_model is not None:
                try:
                    argument = plugin.event_model.parse(event)
                except EventDataError as exc:
                    argument, invalid = UNPARSED, exc
        if plugin is None:
            result = FunctionResult.failure(
                f"Unknown function: {function_id}",
                ErrorKind.UNKNOWN_FUNCTION,
                function_id=function_id,
                invocation_id=context.invocation_id,
            )
        elif plugin.gsap_required and not context.gsap_context_id:
            result = FunctionResult.failure(
                f"function {function_id!r} requires a GSAP context (gsapcontextid); none given",
                ErrorKind.GSAP_REQUIRED,
                function_id=function_id,
                invocation_id=context.invocation_id,
            )
        elif argument is UNPARSED:
            result = FunctionResult.failure(
                f"event data does not fit {plugin.event_model!r}: {invalid}",
                ErrorKind.INVALID_DATA,
                function_id=function_id,
                invocation_id=context.invocation_id,
            )
        elif (
            plugin.idempotent
            and self.idempotency is not None
            and context.event_id
            and context.event_source
        ):
            result = await self._run_once(plugin, event, argument, context, self.idempotency)
        else:
            result, durable = await self._run(plugin, event, argument, context)
            if not durable:
                result = _unrecorded(result)
        self._notify(plugin, context, result)
        return result

    async def dispatch(
        self,
        event_kind: str,
        event_data: Any,
        trigger_cid: str = "",
        context: FunctionContext | None = None,
    ) -> list[FunctionResult]:
        """Invoke, concurrently, every function whose triggers include `event_kind`."""
        base = replace(
            context or FunctionContext(),
            trigger_event_kind=event_kind,
            trigger_event_cid=trigger_cid or (context.trigger_event_cid if context else None),
            invocation_id=None,
        )
        plugins = self.registry.by_trigger(event_kind)
        return list(
            await asyncio.gather(*(self.invoke(p.function_id, event_data, base) for p in plugins))
        )

    async def flush(self) -> bool:
        """Hand kept Chronicle records (and kept idempotency outcomes) over now; True when
        none is left."""
        stored = await self.idempotency.flush() if self.idempotency else True
        recorded = await self.backstop.flush(force=True) if self.backstop else True
        return stored and recorded

    # -- one invocation ----------------------------------------------------------------

    async def _run_once(
        self,
        plugin: FunctionPlugin,
        event: Any,
        argument: Any,
        context: FunctionContext,
        store: IdempotencyStore,
    ) -> FunctionResult:
        assert context.event_id is not None and context.event_source is not None
        key = idempotency_key(plugin.function_id, context.event_source, context.event_id)
        ids = {"function_id": plugin.function_id, "invocation_id": context.invocation_id}
        try:
            fingerprint = content_cid(event)
        except ValueError:
            return (await self._run(plugin, event, argument, context))[0]  # fails: "not JSON"
        claim = await self._claim(store, key, fingerprint, plugin, ids)
        in_progress = not isinstance(claim, FunctionResult) and claim.status == "in_progress"
        if in_progress and await self.outcomes.settled_here(store, key):  # its own record
            claim = await self._claim(store, key, fingerprint, plugin, ids)
        if isinstance(claim, FunctionResult):
            return claim
        if claim.status == "replay" and claim.result is not None:
            return await self.outcomes.replay(FunctionResult.from_dict(claim.result, replayed=True))
        if claim.status == "in_progress":
            return FunctionResult.failure(
                f"event {context.event_source} {context.event_id} is being processed "
                "by another delivery",
                ErrorKind.IN_PROGRESS,
                **ids,
            )
        if claim.status == "conflict":
            return FunctionResult.failure(
                f"event {context.event_source} {context.event_id} was already received "
                "with a different payload",
                ErrorKind.CONFLICT,
                **ids,
            )
        try:
            run = await execute(self.backstop, plugin, argument, context, fingerprint)
            if not run.result.success:
                durable = run.invoked_durable and await self._record(run.completed)
                await store.release(key)
            elif run.completed is None:  # not recorded: the result is the whole outcome
                durable = True
                await store.complete(key, run.result.to_dict())
            else:
                durable = await self.outcomes.record(store, key, run.result, run.completed)
        except BaseException:
            await store.release(key)
            raise
        if run.cancelled is not None:
            raise run.cancelled
        return run.result if durable else _unrecorded(run.result)

    async def _claim(
        self,
        store: IdempotencyStore,
        key: str,
        fingerprint: str,
        plugin: FunctionPlugin,
        ids: dict[str, Any],
    ) -> Claim | FunctionResult:
        """The claim of `key`, or UNAVAILABLE when the store cannot be reached."""
        try:
            return await store.claim(
                key, fingerprint, plugin.timeout, recorded=self.outcomes.recorded
            )
        except IdempotencyUnavailable as exc:
            log.error("%s; %s not run", exc, plugin.function_id)
            return FunctionResult.failure(
                "the idempotency store cannot be reached; retry later",
                ErrorKind.UNAVAILABLE,
                **ids,
            )

    async def _run(
        self, plugin: FunctionPlugin, event: Any, argument: Any, context: FunctionContext
    ) -> tuple[FunctionResult, bool]:
        """The result, and whether its records are durable (delivered or spooled)."""
        try:
            input_cid = content_cid(event)
        except ValueError as exc:
            failure = FunctionResult.failure(
                f"event is not JSON: {exc}",
                ErrorKind.PERMANENT,
                function_id=plugin.function_id,
                invocation_id=context.invocation_id,
            )
            return failure, True
        run = await execute(
            self.backstop,
            plugin,
            argument,
            context,
            input_cid,
            write_ahead=not plugin.pure,
        )
        if run.invoked_unwritten is not None and run.completed is not None:
            assert self.backstop is not None
            durable = await self.backstop.emit_together((run.invoked_unwritten, run.completed))
        else:
            durable = run.invoked_durable and await self._record(run.completed)
        if run.cancelled is not None:
            raise run.cancelled
        return run.result, durable

    async def _record(self, record: Record | None) -> bool:
        return record is None or self.backstop is None or await self.backstop.emit(record)

    def _started(self, function_id: str, context: FunctionContext) -> list[InvocationEnd]:
        ends = []
        for start in self.on_start:
            try:
                ends.append(start(function_id, context))
            except Exception:
                log.exception("invocation start hook %r failed", start)
        return ends

    def _notify(
        self, plugin: FunctionPlugin | None, context: FunctionContext, result: FunctionResult
    ) -> None:
        for observer in self.observers:
            try:
                observer(plugin, context, result)
            except Exception:
                log.exception("runtime observer %r failed", observer)


def _unrecorded(result: FunctionResult) -> FunctionResult:
    """What answers an invocation whose records nothing durable holds: UNAVAILABLE."""
    if result.error_kind is ErrorKind.UNAVAILABLE:
        return result
    log.error(
        "chronicle records of %s %s are kept in memory only; not acknowledged",
        result.function_id,
        result.invocation_id,
    )
    return FunctionResult.failure(
        "the Chronicle cannot keep records (ledger and spool failed); retry later",
        ErrorKind.UNAVAILABLE,
        function_id=result.function_id,
        invocation_id=result.invocation_id,
    )
