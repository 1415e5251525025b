"""OpenLineage RunEvents to a lineage backend, live: the sender behind GOVFN_OPENLINEAGE_URL.

While a serving process has GOVFN_OPENLINEAGE_URL set, the ledger queues each
FUNCTION_INVOKED and FUNCTION_COMPLETED record in `openlineage_outbox` in the statement
that stores it. `OpenLineageSender` (an `OutboxSender`: claims, leases, backoff, nothing
lost in an outage, see `outbox.py`) turns each into the RunEvent that `govfn chronicle
export --format openlineage` writes for it and POSTs it as `application/json` to
`<url>/api/v1/lineage`, the path of OpenLineage's HTTP transport (Marquez and other
backends accept it there). A COMPLETE or FAIL event carries the function version of its
FUNCTION_INVOKED, found through the ledger's lookup keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from govfn.chronicle.lookup_keys import lookup_key
from govfn.chronicle.openlineage import DEFAULT_NAMESPACE, OpenLineageExport
from govfn.chronicle.outbox import OutboxSender, Row
from govfn.chronicle.records import FUNCTION_COMPLETED, FUNCTION_INVOKED, Record

ENDPOINT = "api/v1/lineage"

_INVOKED_VERSION = (
    "SELECT r.body FROM cid_keys k JOIN records r ON r.seq = k.seq "
    "WHERE k.key = ? AND r.cid = ? AND r.type = ? LIMIT 1"
)


@dataclass
class OpenLineageSender(OutboxSender):
    namespace: str = DEFAULT_NAMESPACE

    table: ClassVar[str] = "openlineage_outbox"
    what: ClassVar[str] = "GOVFN_OPENLINEAGE_URL"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._export = OpenLineageExport(self.namespace)
        self._path = self._parts.path.rstrip("/") + "/" + ENDPOINT

    @property
    def endpoint(self) -> str:
        return self._path

    def deliver(self, row: Row) -> bool:
        _, cid, record_type, body = row
        canonical = bytes(body)
        record = Record(record_type, json.loads(canonical), canonical, cid)
        event = self._export.event_alone(record, self._invoked_version(record))
        if event is None:  # a record without the fields a RunEvent needs: nothing to say
            return True
        data = json.dumps(event, separators=(",", ":")).encode("utf-8")
        return self.post(self._path, data, {"content-type": "application/json"}, cid)

    def _invoked_version(self, record: Record) -> str | None:
        invoked_cid = record.payload.get("invoked_cid")
        if record.type != FUNCTION_COMPLETED or not isinstance(invoked_cid, str):
            return None
        with self._db_lock:
            rows = (
                self._db()
                .execute(_INVOKED_VERSION, (lookup_key(invoked_cid), invoked_cid, FUNCTION_INVOKED))
                .fetchall()
            )
        if not rows:
            return None
        version = json.loads(rows[0][0]).get("function_version")
        return version if isinstance(version, str) else None
