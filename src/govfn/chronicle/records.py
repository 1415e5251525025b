"""Chronicle records: canonical JSON documents identified by their CID.

A record's payload names its own type and event code, so the CID of the payload alone
identifies the record wherever it travels (ledger row, CloudEvent to a sink, export line).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from govfn.chronicle.cid import canonical_flat, canonical_json, cid_of_canonical

# An error's text in a FUNCTION_COMPLETED record is cut to this many characters (the rest
# is in the server log): a record must fit a transparency-log entry (65,535 bytes).
MAX_ERROR_CHARS = 2048

FUNCTION_INVOKED = "FUNCTION_INVOKED"
FUNCTION_COMPLETED = "FUNCTION_COMPLETED"

EVENT_CODES = {
    FUNCTION_INVOKED: "0x2A01",
    FUNCTION_COMPLETED: "0x2A02",
}
_INVOKED_CODE = EVENT_CODES[FUNCTION_INVOKED]
_COMPLETED_CODE = EVENT_CODES[FUNCTION_COMPLETED]


class Record(NamedTuple):
    """One Chronicle record: its type, its payload, the payload's canonical bytes and CID."""

    type: str
    payload: dict[str, Any]
    canonical: bytes
    cid: str

    @classmethod
    def build(cls, record_type: str, payload: dict[str, Any]) -> Record:
        canonical = canonical_json(payload)
        return cls(record_type, payload, canonical, cid_of_canonical(canonical))

    @classmethod
    def from_canonical(cls, record_type: str, canonical: bytes) -> Record:
        return cls(record_type, json.loads(canonical), canonical, cid_of_canonical(canonical))

    def to_json_line(self) -> str:
        """One export line: `{"cid", "type", "payload"}`."""
        body = self.canonical.decode("utf-8")
        return f'{{"cid":"{self.cid}","type":{json.dumps(self.type)},"payload":{body}}}'


def function_record(record_type: str, **fields: Any) -> Record:
    """A FUNCTION_INVOKED / FUNCTION_COMPLETED record with its event code."""
    return _function_record(
        record_type, {"event_type": record_type, "event_code": EVENT_CODES[record_type], **fields}
    )


def _function_record(record_type: str, payload: dict[str, Any]) -> Record:
    canonical = canonical_flat(payload)
    return Record(record_type, payload, canonical, cid_of_canonical(canonical))


def invoked(
    plugin: Any, context: Any, trigger_event_cid: str, input_cid: str, invoked_at: str
) -> Record:
    """The FUNCTION_INVOKED record of `plugin` (a `FunctionPlugin`) run in `context` (a
    `FunctionContext`): written before the handler runs. It names the verified sender
    when there is one (a record without a sender has no `sender` field: older CIDs stand)."""
    payload = {
        "event_type": FUNCTION_INVOKED,
        "event_code": _INVOKED_CODE,
        "function_id": plugin.function_id,
        "function_version": plugin.version,
        "invocation_id": context.invocation_id,
        "trigger_event_kind": context.trigger_event_kind,
        "trigger_event_cid": trigger_event_cid,
        "input_cid": input_cid,
        "gsap_context_id": context.gsap_context_id,
        "chronicle_session_id": context.chronicle_session_id,
        "pipeline_run_id": context.pipeline_run_id,
        "event_id": context.event_id,
        "event_source": context.event_source,
        "traceparent": context.traceparent,
        "invoked_at": invoked_at,
    }
    if context.sender_subject is not None:
        payload["sender"] = {"iss": context.sender_issuer, "sub": context.sender_subject}
    return _function_record(FUNCTION_INVOKED, payload)


def completed(
    function_id: str,
    invocation_id: str | None,
    invoked_cid: str | None,
    trigger_event_cid: str,
    outcome: Any,
    *,
    success: bool,
    duration_ms: float,
    output_cid: str | None,
    error_kind: Any,
    reply: Any,
    completed_at: str,
) -> Record:
    """The FUNCTION_COMPLETED record of an invocation: how `outcome` (the handler's
    `FunctionResult`) ended, and the reply event (`replies.ReplyIdentity`) it names."""
    return _function_record(
        FUNCTION_COMPLETED,
        {
            "event_type": FUNCTION_COMPLETED,
            "event_code": _COMPLETED_CODE,
            "function_id": function_id,
            "invocation_id": invocation_id,
            "invoked_cid": invoked_cid,
            "trigger_event_cid": trigger_event_cid,
            "success": success,
            "duration_ms": duration_ms,
            "output_cid": output_cid,
            "reply_id": reply.id if reply else None,
            "reply_source": reply.source if reply else None,
            "reply_cid": reply.data_cid if reply else None,
            "error": _cut(outcome.error),
            "error_kind": None if error_kind is None else error_kind.value,
            "completed_at": completed_at,
        },
    )


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 1] + "…"
