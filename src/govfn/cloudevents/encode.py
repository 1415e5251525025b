"""CloudEvents out: a function's reply event, and a Chronicle record as an outbox event.

Both go out in binary mode (attributes as `ce-*` headers, percent-encoded as the HTTP
binding asks, the data as the body); a batch reply holds structured events instead. Who
a reply is (its id, source and data) is `govfn.replies`; which status a result is
answered with is not decided here: see `govfn.receiver.delivery`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from govfn.function import FunctionResult
from govfn.replies import data_event, reply_data, reply_event_id, reply_source

if TYPE_CHECKING:
    from govfn.cloudevents.decode import IncomingEvent

CARRIED_EXTENSIONS = ("gsapcontextid", "chroniclesessionid", "pipelinerunid")
RECORD_SOURCE = "/govfn/chronicle"


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
_HEADER_UNSAFE = re.compile(r'[^\x21-\x7e]|["%]')  # what a header value may not hold raw


def encode_header_value(value: str) -> str:
    """Percent-encode (UTF-8) what the CloudEvents HTTP binding says may not appear raw."""
    if not _HEADER_UNSAFE.search(value):
        return value
    return _HEADER_UNSAFE.sub(_percent_encoded, value)


def _percent_encoded(match: re.Match[str]) -> str:
    return "".join(f"%{octet:02X}" for octet in match.group().encode("utf-8"))


def binary_headers(attributes: Mapping[str, str], content_type: str) -> list[tuple[str, str]]:
    """Binary mode's head: the data's media type, then one `ce-` header per attribute."""
    headers = [("Content-Type", content_type)]
    headers += [(f"ce-{name}", encode_header_value(value)) for name, value in attributes.items()]
    return headers


def binary_reply(
    trigger: IncomingEvent, result: FunctionResult
) -> tuple[list[tuple[str, str]], bytes]:
    content_type, body = encode_data(reply_data(result))
    return binary_headers(reply_attributes(trigger, result), content_type), body


def record_headers(
    cid: str,
    record_type: str,
    content_type: str,
    payload: Mapping[str, Any] | None,
    extensions: Mapping[str, str],
) -> list[tuple[str, str]]:
    """The head of what the outbox sends as a binary-mode event: a record (its canonical
    JSON `payload` as data) or a signed checkpoint (text). `id` is the CID, so every
    redelivery carries the same id; a record's `time` is when its invocation began or
    ended; `extensions` (K_CE_OVERRIDES) come last and win."""
    attributes = {"specversion": "1.0", "id": cid, "type": record_type, "source": RECORD_SOURCE}
    if payload is not None:
        occurred = payload.get("completed_at") or payload.get("invoked_at")
        if isinstance(occurred, str):
            attributes["time"] = occurred
    attributes.update(extensions)
    if content_type != "application/json":
        content_type = f"{content_type}; charset=utf-8"
    return binary_headers(attributes, content_type)


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
