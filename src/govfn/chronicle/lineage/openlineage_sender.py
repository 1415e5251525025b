"""OpenLineage RunEvents to a lineage backend, live: the sender behind GOVFN_OPENLINEAGE_URL.

While a serving process has GOVFN_OPENLINEAGE_URL set, the SQLite ledger queues each
FUNCTION_INVOKED and FUNCTION_COMPLETED record in `openlineage_outbox` in the statement
that stores it. `OpenLineageSender` is the K_SINK sender's design on that queue (claims
with leases, backoff, nothing lost in an outage, see `sink.py` and `outbox.py`): it turns
each record into the RunEvent that `govfn chronicle export --format openlineage` writes
for it and POSTs it as `application/json` to `<url>/api/v1/lineage`, the path of
OpenLineage's HTTP transport (Marquez and other backends accept it there). A COMPLETE or
FAIL event carries the function version of its FUNCTION_INVOKED, found through the
ledger's lookup keys.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from govfn.chronicle.lineage.openlineage import DEFAULT_NAMESPACE, OpenLineageExport
from govfn.chronicle.lookup_keys import lookup_key
from govfn.chronicle.outbox import Claimed, OutboxQueue, SqliteOutbox
from govfn.chronicle.records import FUNCTION_COMPLETED, FUNCTION_INVOKED, Record
from govfn.chronicle.sink import SinkSender

ENDPOINT = "api/v1/lineage"

_INVOKED_BODY = (
    "SELECT r.body FROM cid_index k JOIN records r ON r.seq = k.seq "
    "WHERE k.key = ? AND r.cid = ? AND r.type = ? LIMIT 1"
)


@dataclass
class OpenLineageSender(SinkSender):
    namespace: str = DEFAULT_NAMESPACE

    setting: ClassVar[str] = "GOVFN_OPENLINEAGE_URL"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._export = OpenLineageExport(self.namespace)
        self._path = self._parts.path.rstrip("/") + "/" + ENDPOINT
        self._db: sqlite3.Connection | None = None
        self._db_pid = 0
        self._db_lock = threading.Lock()

    def default_queue(self) -> OutboxQueue:
        return SqliteOutbox(Path(self.ledger_path), "openlineage_outbox", notes=False)

    @property
    def endpoint(self) -> str:
        """The path RunEvents are POSTed to."""
        return self._path

    def deliver(self, row: Claimed) -> bool:
        record = Record(row.type, json.loads(row.body), row.body, row.cid)
        event = self._export.event_alone(record, self._invoked_version(record))
        if event is None:  # a record without the fields a RunEvent needs: nothing to say
            return True
        data = json.dumps(event, separators=(",", ":")).encode("utf-8")
        return self.send(self._path, data, {"content-type": "application/json"}, row.cid)

    def _invoked_version(self, record: Record) -> str | None:
        invoked_cid = record.payload.get("invoked_cid")
        if record.type != FUNCTION_COMPLETED or not isinstance(invoked_cid, str):
            return None
        query = (lookup_key(invoked_cid), invoked_cid, FUNCTION_INVOKED)
        with self._db_lock:
            rows = self._connection_to_ledger().execute(_INVOKED_BODY, query).fetchall()
        if not rows:
            return None
        version = json.loads(rows[0][0]).get("function_version")
        return version if isinstance(version, str) else None

    def _connection_to_ledger(self) -> sqlite3.Connection:
        if self._db is None or self._db_pid != os.getpid():
            self._db = sqlite3.connect(
                self.ledger_path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db_pid = os.getpid()
        return self._db
