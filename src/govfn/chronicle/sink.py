"""Chronicle records to the broker: the outbox sender behind `K_SINK`.

When Knative's SinkBinding sets `K_SINK`, the ledger queues every record in its
`outbox` table (in the same statement that stores it). `SinkSender` (an `OutboxSender`,
see `outbox.py` for claims, leases and backoff) POSTs each as a binary-mode CloudEvent
(`type` = the record type, `id` = the record CID, extensions from `K_CE_OVERRIDES`):
after an outage every record arrives, at least once, always under the same id.

Signed checkpoints (`note_outbox`) travel the same way after the records they cover:
`type` CHRONICLE_CHECKPOINT, `id` the CID (raw codec) of the note, the note itself as
`text/plain` data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import quote

from govfn.chronicle.outbox import OutboxSender, Row

SOURCE = "/govfn/chronicle"
CHECKPOINT_TYPE = "CHRONICLE_CHECKPOINT"
_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')


@dataclass
class SinkSender(OutboxSender):
    extensions: Mapping[str, str] = field(default_factory=dict)

    table: ClassVar[str] = "outbox"
    what: ClassVar[str] = "K_SINK"

    @property
    def sink_url(self) -> str:
        return self.url

    def depth_query(self) -> str:
        return "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM note_outbox)"

    def deliver(self, row: Row) -> bool:
        _, cid, record_type, body = row
        return self._post(cid, record_type, bytes(body))

    def send_idle(self) -> str:
        """Send queued checkpoint notes (only once no record is due)."""
        now = time.time()
        with self._db_lock:
            conn = self._db()
            claimed = conn.execute(
                "UPDATE note_outbox SET claimed_until = ?, attempts = attempts + 1 WHERE id IN "
                "(SELECT id FROM note_outbox WHERE claimed_until < ? ORDER BY id LIMIT ?) "
                "RETURNING id",
                (now + self.lease_s, now, self.batch),
            ).fetchall()
            marks = ",".join("?" * len(claimed))
            notes = conn.execute(
                f"SELECT id, note FROM checkpoint_notes WHERE id IN ({marks}) ORDER BY id",
                [row[0] for row in claimed],
            ).fetchall()
        if not notes:
            return "idle"
        from govfn.chronicle.cid import cid_of_bytes

        for position, (note_id, note) in enumerate(notes):
            body = note.encode("utf-8")
            if not self._post(cid_of_bytes(body), CHECKPOINT_TYPE, body, "text/plain"):
                self.failed()
                pending = [row[0] for row in notes[position:]]
                with self._db_lock:
                    self._db().execute(
                        "UPDATE note_outbox SET claimed_until = ? WHERE id IN "
                        f"({','.join('?' * len(pending))})",
                        [time.time() + self._delay, *pending],
                    )
                return "failed"
            with self._db_lock:
                self._db().execute("DELETE FROM note_outbox WHERE id = ?", (note_id,))
            self.sent += 1
        self._delay = self.first_delay_s
        return "sent"

    def _post(
        self, cid: str, record_type: str, body: bytes, content_type: str = "application/json"
    ) -> bool:
        headers = {
            "ce-specversion": "1.0",
            "ce-id": cid,
            "ce-type": record_type,
            "ce-source": SOURCE,
            "content-type": content_type,
        }
        if content_type == "application/json":
            payload = json.loads(body)
            occurred = payload.get("completed_at") or payload.get("invoked_at")
            if isinstance(occurred, str):
                headers["ce-time"] = occurred
        else:
            headers["content-type"] = f"{content_type}; charset=utf-8"
        for name, value in self.extensions.items():
            headers[f"ce-{name}"] = quote(value, safe=_SAFE)
        return self.post(self._parts.path or "/", body, headers, cid)
