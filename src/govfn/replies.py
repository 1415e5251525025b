"""The reply event a successful result becomes: its id, its source, its data.

The HTTP receivers send it (`govfn.cloudevents.encode`); the runtime records its identity in
FUNCTION_COMPLETED, so that the invocations a reply triggers downstream (whose
FUNCTION_INVOKED names the trigger event's `source` and `id`) can be linked back to it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any, NamedTuple

from govfn.chronicle.cid import content_cid
from govfn.function import FunctionResult


class ReplyIdentity(NamedTuple):
    """Who a reply event is (CloudEvents `source` + `id`) and the CID of its data."""

    id: str
    source: str
    data_cid: str


@lru_cache(maxsize=128)  # asked twice per event: for its record, then for its reply
def reply_event_id(source: str, event_id: str, function_id: str) -> str:
    """The same for every redelivery of the trigger event to the same function."""
    key = "\x1f".join((source, event_id, function_id)).encode("utf-8")
    return "reply-" + hashlib.sha256(key).hexdigest()[:32]


def reply_source(function_id: str) -> str:
    return f"/govfn/functions/{function_id}"


def data_event(result: FunctionResult) -> dict[str, Any] | None:
    """The CloudEvent a `reply_is_event` function returned as its data, if it did."""
    return _as_event(result.data, result.reply_is_event)


def _as_event(data: Any, reply_is_event: bool) -> dict[str, Any] | None:
    if reply_is_event and isinstance(data, dict) and data.get("specversion") == "1.0":
        return data
    return None


def reply_data(result: FunctionResult) -> Any:
    event = data_event(result)
    return event.get("data") if event is not None else result.data


def has_reply(result: FunctionResult) -> bool:
    return is_reply(result.success, result.data, result.reply_type)


def is_reply(success: bool, data: Any, reply_type: str | None) -> bool:
    """Whether a result with these fields becomes a reply event."""
    return success and data is not None and bool(reply_type)


def reply_identity(
    result: FunctionResult, trigger_source: str | None, trigger_id: str | None
) -> ReplyIdentity | None:
    """The identity of the reply `result` becomes for a trigger event (`source`, `id`);
    None when there is no reply or no trigger event to derive its id from."""
    if not has_reply(result):
        return None
    return identity_of(
        result.function_id or "",
        result.data,
        result.reply_is_event,
        result.output_cid() or "",
        trigger_source,
        trigger_id,
    )


def identity_of(
    function_id: str,
    data: Any,
    reply_is_event: bool,
    data_cid: str,
    trigger_source: str | None,
    trigger_id: str | None,
) -> ReplyIdentity | None:
    """`reply_identity` from the parts of a reply (the runtime knows them, and records the
    identity, before it builds its result); `data_cid` is the CID of `data`."""
    if not trigger_source or not trigger_id:
        return None
    event_id = reply_event_id(trigger_source, trigger_id, function_id)
    source = reply_source(function_id)
    event = _as_event(data, reply_is_event)
    if event is None:
        return ReplyIdentity(event_id, source, data_cid)
    if isinstance(event.get("id"), str) and event["id"]:
        event_id = event["id"]
    if isinstance(event.get("source"), str) and event["source"]:
        source = event["source"]
    return ReplyIdentity(event_id, source, content_cid(event.get("data")))
