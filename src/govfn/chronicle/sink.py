"""Chronicle records to the broker: the outbox sender behind `K_SINK`.

When Knative's SinkBinding sets `K_SINK`, the ledger queues every record in its
`outbox` table (in the same statement that stores it). `SinkSender` is a background
thread that claims queued records, POSTs each as a binary-mode CloudEvent
(`type` = the record type, `id` = the record CID, extensions from `K_CE_OVERRIDES`)
and deletes it once the sink answers 2xx. While the sink refuses or is unreachable it
backs off (doubling up to `max_delay_s`) and keeps everything queued, so an outage
never blocks an invocation and loses no record; after recovery every record arrives,
at least once, always under the same id. Claims carry a lease, so the sender threads
of several worker processes never post the same record at the same time, and a
record claimed by a process that died is posted by another once its lease ends.

Signed checkpoints (`note_outbox`) travel the same way after the records they cover:
`type` CHRONICLE_CHECKPOINT, `id` the CID (raw codec) of the note, the note itself as
`text/plain` data.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from govfn.binary_mode import binary_headers

if TYPE_CHECKING:
    import http.client

log = logging.getLogger("govfn.chronicle.sink")

SOURCE = "/govfn/chronicle"
CHECKPOINT_TYPE = "CHRONICLE_CHECKPOINT"
_IDLE_POLL_S = 0.5


@dataclass
class SinkSender:
    ledger_path: Path
    sink_url: str
    extensions: Mapping[str, str] = field(default_factory=dict)
    ca_certs: str | None = None
    batch: int = 64
    lease_s: float = 30.0
    first_delay_s: float = 0.2
    max_delay_s: float = 10.0
    timeout_s: float = 5.0
    sent: int = 0
    failures: int = 0

    def __post_init__(self) -> None:
        parts = urlsplit(self.sink_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"K_SINK must be an http(s) URL, got {self.sink_url!r}")
        self._parts = parts
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._http: http.client.HTTPConnection | None = None
        self._delay = self.first_delay_s
        self._warned_depth = 0
        self._pid = 0
        self._db_lock = threading.Lock()  # the sender thread and /metrics share the connection

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the sender thread of this process (again after a fork: threads do not
        survive one, and neither may the database and HTTP connections)."""
        if self._pid != os.getpid():
            self._thread, self._conn, self._http, self._pid = None, None, None, os.getpid()
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="govfn-sink", daemon=True)
            self._thread.start()

    def notify(self) -> None:
        """New records were queued: send now rather than at the next poll."""
        if self._pid != os.getpid() or self._thread is None:
            self.start()
        self._wake.set()

    def stop(self, drain_timeout_s: float = 0.0) -> int:
        """Stop the thread after sending what the sink accepts within the timeout;
        return how many records are still queued (they stay in the outbox)."""
        deadline = time.monotonic() + drain_timeout_s
        while drain_timeout_s > 0 and time.monotonic() < deadline and self.depth() > 0:
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 1)
        return self.depth()

    def depth(self) -> int:
        try:
            with self._db_lock:
                rows = (
                    self._db()
                    .execute(
                        "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM note_outbox)"
                    )
                    .fetchall()
                )
            return int(rows[0][0])
        except sqlite3.Error:
            return -1

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                outcome = self.send_once()
            except Exception:  # the loop must survive anything, or records stay queued
                log.exception("chronicle sink sender failed; retrying")
                outcome = "failed"
            if outcome == "sent":
                continue
            if outcome == "failed":
                self._stop.wait(self._delay)  # back off: new records do not wake us
            else:
                self._wake.wait(_IDLE_POLL_S)
                self._wake.clear()

    def send_once(self) -> str:
        """Send one claimed batch: "sent", "idle" (nothing due) or "failed" (backing off)."""
        rows = self._claim()
        if not rows:
            return self._send_checkpoints()
        for seq, cid, record_type, body in rows:
            if not self._post(cid, record_type, bytes(body)):
                self.failures += 1
                self._delay = min(self._delay * 2, self.max_delay_s)
                self._release(seq, rows)
                self._warn_depth()
                return "failed"
            with self._db_lock:
                self._db().execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            self.sent += 1
        self._delay = self.first_delay_s
        return "sent"

    def _send_checkpoints(self) -> str:
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
                self.failures += 1
                self._delay = min(self._delay * 2, self.max_delay_s)
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

    def _claim(self) -> list[tuple[int, str, str, bytes]]:
        now = time.time()
        with self._db_lock:
            return self._claim_locked(now)

    def _claim_locked(self, now: float) -> list[tuple[int, str, str, bytes]]:
        conn = self._db()
        claimed = conn.execute(
            "UPDATE outbox SET claimed_until = ?, attempts = attempts + 1 WHERE seq IN "
            "(SELECT seq FROM outbox WHERE claimed_until < ? ORDER BY seq LIMIT ?) RETURNING seq",
            (now + self.lease_s, now, self.batch),
        ).fetchall()
        if not claimed:
            return []
        marks = ",".join("?" * len(claimed))
        return conn.execute(
            f"SELECT seq, cid, type, body FROM records WHERE seq IN ({marks}) ORDER BY seq",
            [row[0] for row in claimed],
        ).fetchall()

    def _release(self, failed_seq: int, rows: list[tuple[int, str, str, bytes]]) -> None:
        """Unclaim the failed record and the rest of its batch, due after the backoff."""
        pending = [seq for seq, *_ in rows if seq >= failed_seq]
        marks = ",".join("?" * len(pending))
        with self._db_lock:
            self._db().execute(
                f"UPDATE outbox SET claimed_until = ? WHERE seq IN ({marks})",
                [time.time() + self._delay, *pending],
            )

    def _warn_depth(self) -> None:
        depth = self.depth()
        if depth >= max(100, 2 * self._warned_depth):
            self._warned_depth = depth
            log.warning("chronicle outbox is growing: %d record(s) waiting for the sink", depth)

    # -- I/O ---------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(
                self.ledger_path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        return self._conn

    def _post(
        self, cid: str, record_type: str, body: bytes, content_type: str = "application/json"
    ) -> bool:
        import http.client  # only processes with K_SINK pay for it

        headers = dict(self._event_head(cid, record_type, body, content_type))
        try:
            connection = self._connection()
            connection.request("POST", self._parts.path or "/", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            log.warning("chronicle sink %s unreachable: %s", self.sink_url, exc)
            self._close_http()
            return False
        if 200 <= response.status < 300:
            return True
        log.warning("chronicle sink %s answered %d for %s", self.sink_url, response.status, cid)
        if response.will_close:
            self._close_http()
        return False

    def _event_head(
        self, cid: str, record_type: str, body: bytes, content_type: str
    ) -> list[tuple[str, str]]:
        """The binary-mode head of a record (JSON) or a checkpoint (text): `id` is the CID,
        so every redelivery carries the same id; a record's `time` is when its invocation
        began or ended; the K_CE_OVERRIDES extensions come last and win."""
        attributes = {"specversion": "1.0", "id": cid, "type": record_type, "source": SOURCE}
        if content_type == "application/json":
            payload = json.loads(body)
            occurred = payload.get("completed_at") or payload.get("invoked_at")
            if isinstance(occurred, str):
                attributes["time"] = occurred
        else:
            content_type = f"{content_type}; charset=utf-8"
        attributes.update(self.extensions)
        return binary_headers(attributes, content_type)

    def _connection(self) -> http.client.HTTPConnection:
        import http.client

        if self._http is None:
            host, port = self._parts.hostname or "", self._parts.port
            if self._parts.scheme == "https":
                import ssl

                # SinkBinding passes the sink's CA bundle as PEM text in K_CA_CERTS.
                context = ssl.create_default_context(cadata=self.ca_certs or None)
                self._http = http.client.HTTPSConnection(
                    host, port, timeout=self.timeout_s, context=context
                )
            else:
                self._http = http.client.HTTPConnection(host, port, timeout=self.timeout_s)
        return self._http

    def _close_http(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
