"""The functions of the lineage pipeline (see `support.lineage_pipeline`): imported only
when a registry loads them, so that loading the fixtures registers nothing."""

from __future__ import annotations

from typing import Any

from govfn import FunctionContext, PermanentError, governed_function


@governed_function("meter", trigger_events=["BILLABLE_EVENT"], emits=["USAGE_METERED"])
async def meter(event: Any, context: FunctionContext) -> Any:
    return {"metered": event["quantity"], "chronicle_cid": event["chronicle_cid"]}


@governed_function("quota", trigger_events=["BILLABLE_EVENT"], emits=["QUOTA_CHECKED"])
async def quota(event: Any, context: FunctionContext) -> Any:
    if event["quantity"] > 5:
        raise PermanentError(f"quota exceeded: {event['quantity']} units")
    return {"within_quota": True}


@governed_function("archive", trigger_events=["USAGE_METERED"])
async def archive(event: Any, context: FunctionContext) -> Any:
    return {"archived": event["metered"]}
