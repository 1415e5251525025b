"""Functions the HTTP tests serve (imported as `--functions support.http_samples`)."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from govfn import FunctionContext, FunctionResult, PermanentError, governed_function


@governed_function("fail", trigger_events=["FAIL_REQUESTED"], emits=["FAIL_REPLIED"])
async def fail(event: Any, context: FunctionContext) -> Any:
    raise RuntimeError("secret-internal-detail")


@governed_function("reject", trigger_events=["REJECT_REQUESTED"], emits=["REJECT_REPLIED"])
async def reject(event: Any, context: FunctionContext) -> Any:
    raise PermanentError("order total must be positive")


@governed_function("slow", trigger_events=["SLOW_REQUESTED"], emits=["SLOW_REPLIED"], timeout=1.0)
async def slow(event: Any, context: FunctionContext) -> Any:
    await asyncio.sleep(float(event.get("sleep", 0)) if isinstance(event, dict) else 0)
    return {"slept": True}


@governed_function("sink", trigger_events=["SINK_REQUESTED"])
async def sink(event: Any, context: FunctionContext) -> Any:
    return {"stored": True}


@governed_function("upper", trigger_events=["UPPER_REQUESTED"], emits=["UPPER_REPLIED"])
def upper(event: Any, context: FunctionContext) -> Any:
    """A sync handler: runs in the loop's executor."""
    return str(event).upper()


@governed_function("outcome", trigger_events=["OUTCOME_REQUESTED"], emits=["OUTCOME_REPLIED"])
async def outcome(event: Any, context: FunctionContext) -> FunctionResult:
    """Returns the failure kind the event asks for (what the idempotency store produces)."""
    return FunctionResult.failure("asked for " + str(event["kind"]), str(event["kind"]))


@governed_function("whereami", trigger_events=["WHEREAMI_REQUESTED"], emits=["WHEREAMI_REPLIED"])
async def whereami(event: Any, context: FunctionContext) -> Any:
    """Which event loop and thread ran the handler, and the context it saw."""
    return {
        "pid": os.getpid(),
        "loop": id(asyncio.get_running_loop()),
        "thread": threading.get_ident(),
        "context": context.to_dict(),
    }


@governed_function("fan-a", trigger_events=["FANOUT"], emits=["FAN_A_REPLIED"])
async def fan_a(event: Any, context: FunctionContext) -> Any:
    return {"from": "a"}


@governed_function("fan-b", trigger_events=["FANOUT"])
async def fan_b(event: Any, context: FunctionContext) -> Any:
    return {"from": "b"}
