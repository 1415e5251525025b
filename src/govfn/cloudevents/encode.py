"""From a FunctionResult to an HTTP answer, following Knative's delivery contract.

success, data and a reply type  → 200, the reply CloudEvent (binary mode)
success otherwise               → 202, empty body
unknown_function                → 404 (retried: the function may be rolling out)
gsap_required                   → 400 (not retried), names gsapcontextid
permanent, conflict             → 422 (not retried)
in_progress                     → 409 + Retry-After (retried)
unavailable                     → 503 + Retry-After (retried): a store or the Chronicle failed
timeout                         → 504 (retried)
error and anything else         → 500 (retried); the body never holds the error text
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from govfn.cloudevents.decode import IncomingEvent
from govfn.function import FunctionResult
from govfn.problem import HttpProblem
from govfn.replies import data_event, reply_data, reply_event_id, reply_source
from govfn.replies import has_reply as has_reply  # the receivers import it from here

CARRIED_EXTENSIONS = ("gsapcontextid", "chroniclesessionid", "pipelinerunid")

_STATUS = {
    "unknown_function": 404,
    "gsap_required": 400,
    "permanent": 422,
    "conflict": 422,
    "in_progress": 409,
    "unavailable": 503,
    "timeout": 504,
    "error": 500,
}
RETRIED = frozenset({404, 408, 409, 429}) | frozenset(range(500, 600))


def status_for(result: FunctionResult) -> int:
    if result.success:
        return 200 if has_reply(result) else 202
    return _STATUS.get(result.error_kind or "error", 500)


def failure_problem(result: FunctionResult, retry_after_s: int) -> HttpProblem:
    """The problem body for a failed result; handler exception text is never exposed."""
    kind = result.error_kind or "error"
    status = _STATUS.get(kind, 500)
    extra: dict[str, Any] = {
        "function_id": result.function_id,
        "invocation_id": result.invocation_id,
    }
    if kind == "gsap_required":
        detail = result.error or "a GSAP context is required"
        return HttpProblem(status, detail, attribute="gsapcontextid", **extra)
    if kind == "unknown_function":
        return HttpProblem(status, f"unknown function {result.function_id!r}", **extra)
    if kind in ("permanent", "conflict"):
        return HttpProblem(status, result.error or kind, error_kind=kind, **extra)
    if kind == "in_progress":
        return HttpProblem(
            status,
            "the same event is being processed; retry later",
            retry_after=retry_after_s,
            error_kind=kind,
            **extra,
        )
    if kind == "unavailable":
        return HttpProblem(
            status,
            result.error or "a dependency is unavailable; retry later",
            retry_after=retry_after_s,
            error_kind=kind,
            **extra,
        )
    if kind == "timeout":
        return HttpProblem(status, "the function timed out", error_kind=kind, **extra)
    return HttpProblem(
        status,
        "the function failed; see the server log for this invocation id",
        error_kind="error",
        **extra,
    )


def reply_id(trigger: IncomingEvent, function_id: str) -> str:
    """The same for every redelivery of the trigger event to the same function."""
    return reply_event_id(trigger.source, trigger.id, function_id)


_EVENT_ATTRIBUTES = ("id", "source", "type", "subject", "time")


def reply_attributes(trigger: IncomingEvent, result: FunctionResult) -> dict[str, str]:
    function_id = result.function_id or ""
    attributes = {
        "specversion": "1.0",
        "id": reply_id(trigger, function_id),
        "source": reply_source(function_id),
        "type": result.reply_type or "",
    }
    event = data_event(result)
    if event is not None:
        for name in _EVENT_ATTRIBUTES:
            if isinstance(event.get(name), str) and event[name]:
                attributes[name] = event[name]
    if result.lineage_cid:
        attributes["lineagecid"] = result.lineage_cid
    for name in CARRIED_EXTENSIONS:
        value = trigger.attributes.get(name)
        if value:
            attributes[name] = value
    return attributes


def encode_data(data: Any) -> tuple[str, bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        return "application/octet-stream", bytes(data)
    return "application/json", _JSON.encode(data).encode("utf-8")


_JSON = json.JSONEncoder(separators=(",", ":"))
_HEADER_SAFE = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "%"}
_HEADER_UNSAFE = re.compile(r'[^\x21-\x7e]|["%]')


def encode_header_value(value: str) -> str:
    """Percent-encode what the CloudEvents HTTP binding says may not appear raw."""
    if not _HEADER_UNSAFE.search(value):
        return value
    return "".join(
        char if char in _HEADER_SAFE else "".join(f"%{b:02X}" for b in char.encode("utf-8"))
        for char in value
    )


def binary_reply(
    trigger: IncomingEvent, result: FunctionResult
) -> tuple[list[tuple[str, str]], bytes]:
    content_type, body = encode_data(reply_data(result))
    headers = [("Content-Type", content_type)]
    headers += [
        (f"ce-{name}", encode_header_value(value))
        for name, value in reply_attributes(trigger, result).items()
    ]
    return headers, body


def structured_reply(trigger: IncomingEvent, result: FunctionResult) -> dict[str, Any]:
    event: dict[str, Any] = dict(reply_attributes(trigger, result))
    data = reply_data(result)
    if isinstance(data, bytes | bytearray | memoryview):
        event["datacontenttype"] = "application/octet-stream"
        event["data_base64"] = base64.b64encode(bytes(data)).decode("ascii")
    else:
        event["datacontenttype"] = "application/json"
        event["data"] = data
    return event
