"""Chronicle records: canonical JSON documents identified by their CID.

A record's payload names its own type and event code, so the CID of the payload alone
identifies the record wherever it travels (ledger row, CloudEvent to a sink, export line).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from govfn.chronicle.cid import canonical_flat, canonical_json, cid_of_canonical

FUNCTION_INVOKED = "FUNCTION_INVOKED"
FUNCTION_COMPLETED = "FUNCTION_COMPLETED"

EVENT_CODES = {
    FUNCTION_INVOKED: "0x2A01",
    FUNCTION_COMPLETED: "0x2A02",
}


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
    payload = {"event_type": record_type, "event_code": EVENT_CODES[record_type], **fields}
    canonical = canonical_flat(payload)
    return Record(record_type, payload, canonical, cid_of_canonical(canonical))
