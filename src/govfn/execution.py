"""One run of a handler, with its records: FUNCTION_INVOKED before, the handler (its
timeout enforced, what it raises turned into a failed result), the result and the
FUNCTION_COMPLETED record after. Emitting that last record is the caller's
(`runtime.FunctionRuntime`): it may carry the settlement of an idempotency claim.
Also the invocation ids and the record times.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, NamedTuple

from govfn.chronicle import records
from govfn.chronicle.backstop import Backstop
from govfn.chronicle.cid import snapshot
from govfn.chronicle.records import Record
from govfn.errors import PermanentError
from govfn.function import FunctionContext, FunctionPlugin, FunctionResult
from govfn.outcome import ErrorKind
from govfn.replies import identity_of, is_reply

log = logging.getLogger("govfn.runtime")

_RANDOM_IDS_AT_ONCE = 256
_random_ids: list[bytes] = []  # 16 random bytes each, drawn from os.urandom together


def _forget_random_ids() -> None:
    _random_ids.clear()  # a forked child must not reuse its parent's bytes


os.register_at_fork(after_in_child=_forget_random_ids)


def new_invocation_id() -> str:
    """A random (version 4) UUID as text; cheaper than `str(uuid.uuid4())`, and the random
    bytes of 256 ids are read at once (one `os.urandom` call instead of one per id)."""
    try:
        raw = bytearray(_random_ids.pop())  # list.pop is atomic: no two callers share bytes
    except IndexError:
        drawn = os.urandom(16 * _RANDOM_IDS_AT_ONCE)
        _random_ids.extend(drawn[i : i + 16] for i in range(16, len(drawn), 16))
        raw = bytearray(drawn[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_second: tuple[int, str] = (0, "")


def now() -> str:
    """UTC now as RFC 3339 with microseconds; the date-time part is formatted once a second."""
    global _second
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    if _second[0] != seconds:
        _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{_second[1]}.{nanoseconds // 1000:06d}Z"


class Execution(NamedTuple):
    """One run of a handler: its result, the COMPLETED record still to emit (None when
    not recorded), the cancellation to raise once it is, whether FUNCTION_INVOKED was
    durable (when not, the handler did not run), and FUNCTION_INVOKED itself when it was
    not written ahead (a pure function's: the caller emits both together)."""

    result: FunctionResult
    completed: Record | None
    cancelled: asyncio.CancelledError | None
    invoked_durable: bool = True
    invoked_unwritten: Record | None = None  # not written ahead: to emit with `completed`


async def execute(
    backstop: Backstop | None,
    plugin: FunctionPlugin,
    argument: Any,
    context: FunctionContext,
    input_cid: str,
    *,
    write_ahead: bool = True,
) -> Execution:
    """Record FUNCTION_INVOKED, run the handler on `argument` (the event's data, or the
    instance of a typed handler's event type built from it; `input_cid` names the data),
    and build the result and the FUNCTION_COMPLETED record naming it (emitting that is
    the caller's: it may carry the claim's settlement). When FUNCTION_INVOKED is not
    durable, the handler does not run (the result is UNAVAILABLE). Without `write_ahead`
    (a pure function: nothing it does outlives its result), FUNCTION_INVOKED is built but
    left for the caller to emit with FUNCTION_COMPLETED, in one commit. A handler's output
    that is its input, unchanged (equal `cid.snapshot`s before and after it ran), keeps
    `input_cid` without writing the data's canonical form again."""
    trigger_cid = context.trigger_event_cid or input_cid
    recording = plugin.chronicle_enabled and backstop is not None
    invoked = None
    if recording:
        assert backstop is not None
        invoked = records.invoked(plugin, context, trigger_cid, input_cid, now())
        if write_ahead and not await backstop.emit(invoked):
            backstop.withdraw(invoked)
            refused = FunctionResult.failure(
                "the Chronicle cannot keep records (ledger and spool failed); retry later",
                ErrorKind.UNAVAILABLE,
                function_id=plugin.function_id,
                invocation_id=context.invocation_id,
            )
            return Execution(refused, None, None, invoked_durable=False)

    input_snapshot = snapshot(argument)
    started = time.perf_counter()
    cancelled: asyncio.CancelledError | None = None
    try:
        outcome = await call_handler(plugin, argument, context)
    except asyncio.CancelledError as exc:  # e.g. the caller gave up: still record the end
        cancelled = exc
        outcome = FunctionResult.failure("cancelled", ErrorKind.CANCELLED)
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    output_cid = None
    if outcome.success:
        try:
            if (
                outcome.data is argument
                and input_snapshot is not None
                and snapshot(argument) == input_snapshot
            ):
                output_cid = input_cid  # returned as it came in
            else:  # the data as returned: the handler may have changed what it was given
                output_cid = outcome.output_cid()
        except ValueError as exc:
            outcome = FunctionResult.failure(
                f"handler returned data that is not JSON: {exc}", ErrorKind.ERROR
            )
    success = outcome.success
    error_kind = None if success else ErrorKind.of(outcome.error_kind)
    reply_type, reply_is_event = outcome.reply_type, outcome.reply_is_event
    if success:
        reply_type = reply_type or plugin.reply_type
        reply_is_event = reply_is_event or plugin.reply_is_event

    completed = None
    if recording:
        reply = None
        if is_reply(success, outcome.data, reply_type):
            reply = identity_of(
                plugin.function_id,
                outcome.data,
                reply_is_event,
                output_cid or "",
                context.event_source,
                context.event_id,
            )
        completed = records.completed(
            plugin.function_id,
            context.invocation_id,
            invoked.cid if invoked is not None else None,
            trigger_cid,
            outcome,
            success=success,
            duration_ms=duration_ms,
            output_cid=output_cid,
            error_kind=error_kind,
            reply=reply,
            completed_at=now(),
        )
    result = FunctionResult(
        success=success,
        data=outcome.data,
        error=outcome.error,
        error_kind=error_kind,
        duration_ms=duration_ms,
        lineage_cid=completed.cid if completed is not None else None,
        function_id=plugin.function_id,
        invocation_id=context.invocation_id,
        reply_type=reply_type,
        reply_is_event=reply_is_event,
        _output_cid=output_cid,
    )
    return Execution(result, completed, cancelled, True, None if write_ahead else invoked)


async def call_handler(
    plugin: FunctionPlugin, event: Any, context: FunctionContext
) -> FunctionResult:
    """What the handler answered, or the failure it caused (kind not yet settled)."""
    try:
        if plugin.timeout is None:
            result = await plugin.handle(event, context)
        else:
            result = await asyncio.wait_for(plugin.handle(event, context), plugin.timeout)
    except TimeoutError:
        return FunctionResult.failure("timeout", ErrorKind.TIMEOUT)
    except PermanentError as exc:
        return FunctionResult.failure(str(exc) or type(exc).__name__, ErrorKind.PERMANENT)
    except Exception as exc:
        log.exception("function %s raised", plugin.function_id)
        return FunctionResult.failure(f"{type(exc).__name__}: {exc}", ErrorKind.ERROR)
    if not isinstance(result, FunctionResult):
        return FunctionResult.failure(
            f"handle() returned {type(result).__name__}, not FunctionResult", ErrorKind.ERROR
        )
    return result
