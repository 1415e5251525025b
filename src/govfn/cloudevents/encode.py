"""CloudEvents out: the reply event a function's result becomes.

A single reply goes out in binary mode (`govfn.binary_mode`, which the Chronicle's outbox
sender shares); a batch reply holds structured events. A trigger event that carries a
`correlationid` extension (Knative Eventing's RequestReply, 1.17+) gets a reply whose
`replyid` is that value, in every mode, so that the RequestReply resource hands it to the
requester. Who a reply is (its id, source and data) is `govfn.replies`; which status a
result is answered with is not decided here: see `govfn.receiver.delivery`.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import orjson

from govfn.binary_mode import binary_headers
from govfn.function import FunctionResult
from govfn.replies import data_event, reply_data, reply_event_id, reply_source

if TYPE_CHECKING:
    from govfn.cloudevents.decode import IncomingEvent

CARRIED_EXTENSIONS = ("gsapcontextid", "chroniclesessionid", "pipelinerunid")
CORRELATION_ID = "correlationid"  # RequestReply: the request's extension ...
REPLY_ID = "replyid"  # ... and the reply's, holding the same value


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
    correlation = trigger.attributes.get(CORRELATION_ID)
    if correlation:
        attributes[REPLY_ID] = correlation
    return attributes


def encode_data(data: Any) -> tuple[str, bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        return "application/octet-stream", bytes(data)
    return "application/json", _json_bytes(data)


def _json_bytes(data: Any) -> bytes:
    """Compact JSON of `data` (UTF-8, non-ASCII as it is), read back as the same value as
    `json.dumps(data)`: orjson writes it, except what orjson writes otherwise or refuses
    (subclasses of str/int/float/dict/list, integers past 64 bits, keys that are not
    strings, lone surrogates) and data with a null in it, where NaN and the infinities may
    hide (orjson writes them as null): those go through the standard library's encoder.
    Enums and UUIDs, which orjson writes and json refuses, do not reach a reply: a result's
    data has a CID first, and `content_cid` refuses them."""
    try:
        encoded = orjson.dumps(data, default=_refuse, option=_AS_IT_IS)
    except TypeError:
        return _JSON.encode(data).encode("utf-8")
    if b"null" in encoded:
        return _JSON.encode(data).encode("utf-8")
    return encoded


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


_JSON = json.JSONEncoder(separators=(",", ":"))
_AS_IT_IS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def binary_reply(
    trigger: IncomingEvent, result: FunctionResult
) -> tuple[list[tuple[str, str]], bytes]:
    content_type, body = encode_data(reply_data(result))
    return binary_headers(reply_attributes(trigger, result), content_type), body


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
