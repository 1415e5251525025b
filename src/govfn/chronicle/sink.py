"""Chronicle records to the broker: the outbox sender behind `K_SINK`.

When Knative's SinkBinding sets `K_SINK`, the ledger queues every record in its outbox
(in the same statement that stores it): the SQLite file's `outbox` table, or with
PostgreSQL the shared `chronicle.outbox` (see `outbox.OutboxQueue`). `SinkSender` is a
background thread that claims queued records, POSTs each as a binary-mode CloudEvent
(`type` = the record type, `id` = the record CID, extensions from `K_CE_OVERRIDES`) and
deletes it once the sink answers 2xx. While the sink refuses or is unreachable it backs
off (doubling up to `max_delay_s`) and keeps everything queued, so an outage never
blocks an invocation and loses no record; after recovery every record arrives, at least
once, always under the same id. Claims carry a lease, so the sender threads of several
worker processes never post the same record at the same time, and a record claimed by a
process that died is posted by another once its lease ends.

Signed checkpoints (`note_outbox`) travel the same way after the records they cover:
`type` CHRONICLE_CHECKPOINT, `id` the CID (raw codec) of the note, the note itself as
`text/plain` data.

Each request carries the SinkBinding's OIDC token, and an https sink is verified with the
CA bundles Knative mounts as well as the system's (`sink_auth.py`). A sink that answers 401
or 403 refuses the sender itself, not the record: retrying soon cannot help (a missing or
wrong token, an EventPolicy that does not allow it). Such an answer is logged as an error
and counted (`refused`, the metric `govfn_chronicle_sink_refused`); the records stay in the
outbox (the ledger holds them anyway) and nobody claims them for `refused_hold_s` (5 min),
after which one request tries again, re-reading the token: a fixed policy or a refreshed
token lets everything through without a restart, and a lasting refusal costs one request
per hold and process.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from govfn.binary_mode import binary_headers
from govfn.chronicle.outbox import Claimed, ClaimedNote, OutboxQueue, SqliteOutbox
from govfn.chronicle.sink_auth import bearer_token, trust_context
from govfn.chronicle.store import LedgerError

if TYPE_CHECKING:
    import http.client

log = logging.getLogger("govfn.chronicle.sink")

SOURCE = "/govfn/chronicle"
CHECKPOINT_TYPE = "CHRONICLE_CHECKPOINT"
_IDLE_POLL_S = 0.5
REFUSED = (401, 403)  # the sender is not allowed: not retried until refused_hold_s passed


class SinkRefused(Exception):
    """The sink answered 401 or 403: it refuses this sender, whatever the record."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the sink answered {status}")
        self.status = status


@dataclass
class SinkSender:
    """The K_SINK sender; `deliver` and `setting` are what another destination of the
    same outbox design (`openlineage_sender`) changes."""

    ledger_path: Path
    sink_url: str
    extensions: Mapping[str, str] = field(default_factory=dict)
    ca_certs: str | None = None
    token_file: Path | None = None  # the SinkBinding's OIDC token, read for each request
    ca_dir: Path | None = None  # more CA bundles: every *.crt file in it
    batch: int = 64
    lease_s: float = 30.0
    first_delay_s: float = 0.2
    max_delay_s: float = 10.0
    timeout_s: float = 5.0
    refused_hold_s: float = 300.0
    sent: int = 0
    failures: int = 0
    refused: int = 0  # answers 401/403
    outbox: OutboxQueue | None = None  # default: the outbox tables of the file at ledger_path

    setting: ClassVar[str] = "K_SINK"  # how errors and logs name the destination

    def __post_init__(self) -> None:
        parts = urlsplit(self.sink_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{self.setting} must be an http(s) URL, got {self.sink_url!r}")
        self._parts = parts
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue: OutboxQueue = self.outbox or self.default_queue()
        self._http: http.client.HTTPConnection | None = None
        self._delay = self.first_delay_s
        self._warned_depth = 0
        self._pid = 0

    def default_queue(self) -> OutboxQueue:
        return SqliteOutbox(Path(self.ledger_path))

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the sender thread of this process (again after a fork: threads do not
        survive one, and neither may the database and HTTP connections)."""
        if self._pid != os.getpid():
            self._thread, self._http, self._pid = None, None, os.getpid()
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
        left = self.depth()
        self._queue.close()
        return left

    def depth(self) -> int:
        """Records and checkpoint notes waiting; -1 when the outbox cannot be read."""
        return self._queue.depth()

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                outcome = self.send_once()
            except LedgerError as exc:  # the outbox's database is away: back off, say why
                log.warning(
                    "chronicle outbox unreadable (%s); retrying in %.1f s", exc, self._delay
                )
                self._delay = min(self._delay * 2, self.max_delay_s)
                outcome = "failed"
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
        rows = self._queue.claim(self.batch, self.lease_s)
        if not rows:
            return self._send_checkpoints()
        for position, row in enumerate(rows):
            try:
                delivered = self.deliver(row)
            except SinkRefused as refusal:
                self._refused(refusal, rows[position:], self._queue.release)
                return "failed"
            if not delivered:
                self._failed(rows[position:], self._queue.release)
                return "failed"
            self._queue.sent(row.key)
            self.sent += 1
        self._delay = self.first_delay_s
        return "sent"

    def _send_checkpoints(self) -> str:
        """Send queued checkpoint notes (only once no record is due)."""
        notes = self._queue.claim_notes(self.batch, self.lease_s)
        if not notes:
            return "idle"
        from govfn.chronicle.cid import cid_of_bytes

        for position, note in enumerate(notes):
            try:
                delivered = self._post(
                    cid_of_bytes(note.body), CHECKPOINT_TYPE, note.body, "text/plain"
                )
            except SinkRefused as refusal:
                self._refused(refusal, notes[position:], self._queue.release_notes)
                return "failed"
            if not delivered:
                self._failed(notes[position:], self._queue.release_notes)
                return "failed"
            self._queue.note_sent(note.key)
            self.sent += 1
        self._delay = self.first_delay_s
        return "sent"

    def _failed(
        self,
        pending: Sequence[Claimed | ClaimedNote],
        release: Callable[[Sequence[Hashable], float], None],
    ) -> None:
        """Back off, and unclaim the failed item and the rest of its batch until then."""
        self.failures += 1
        self._delay = min(self._delay * 2, self.max_delay_s)
        release([item.key for item in pending], self._delay)
        self._warn_depth()

    def _refused(
        self,
        refusal: SinkRefused,
        pending: Sequence[Claimed | ClaimedNote],
        release: Callable[[Sequence[Hashable], float], None],
    ) -> None:
        """The sink refuses the sender: keep everything queued, unclaimed by anyone for
        `refused_hold_s`, and wait as long before the next request."""
        self.refused += 1
        self._delay = self.refused_hold_s
        release([item.key for item in pending], self._delay)
        token = "with" if bearer_token(self.token_file) else "without"
        log.error(
            "chronicle %s %s answered %d to a request sent %s a token: the sender is not "
            "allowed (for K_SINK: Knative's authentication-oidc feature, the sink's "
            "EventPolicy); %d item(s) stay queued, next attempt in %.0f s",
            self.setting,
            self.sink_url,
            refusal.status,
            token,
            max(self.depth(), len(pending)),
            self._delay,
        )

    def _warn_depth(self) -> None:
        depth = self.depth()
        if depth >= max(100, 2 * self._warned_depth):
            self._warned_depth = depth
            log.warning(
                "chronicle outbox is growing: %d record(s) waiting for %s", depth, self.setting
            )

    # -- I/O ---------------------------------------------------------------------------

    def deliver(self, row: Claimed) -> bool:
        """Send one queued record; True once the destination accepted it."""
        return self._post(row.cid, row.type, row.body)

    def _post(
        self, cid: str, record_type: str, body: bytes, content_type: str = "application/json"
    ) -> bool:
        headers = dict(self._event_head(cid, record_type, body, content_type))
        return self.send(self._parts.path or "/", body, headers, cid)

    def send(self, path: str, body: bytes, headers: Mapping[str, str], name: str) -> bool:
        """POST on the kept-alive connection; True on a 2xx answer, SinkRefused on 401/403."""
        import http.client

        headers = dict(headers)
        token = bearer_token(self.token_file)
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        try:
            connection = self._connection()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            log.warning("chronicle %s %s unreachable: %s", self.setting, self.sink_url, exc)
            self._close_http()
            return False
        if 200 <= response.status < 300:
            return True
        if response.will_close:
            self._close_http()
        if response.status in REFUSED:
            raise SinkRefused(response.status)
        log.warning(
            "chronicle %s %s answered %d for %s",
            self.setting,
            self.sink_url,
            response.status,
            name,
        )
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
                # The system's CAs, K_CA_CERTS (PEM text) and the bundles in ca_dir.
                context = trust_context(self.ca_certs, self.ca_dir)
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
