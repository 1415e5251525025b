"""The outbox sender: a background thread that delivers what the ledger queued.

The ledger queues a record in an outbox table (`outbox` for K_SINK, `openlineage_outbox`
for GOVFN_OPENLINEAGE_URL) in the same statement that stores it. A sender claims queued
rows, delivers each over HTTP (`deliver`, per destination) and deletes it once the
destination answers 2xx. While the destination refuses or is unreachable it backs off
(doubling up to `max_delay_s`) and keeps everything queued, so an outage never blocks an
invocation and loses nothing; after recovery everything arrives, at least once. Claims
carry a lease, so the senders of several worker processes never deliver the same row at
the same time, and a row claimed by a process that died is delivered by another once
its lease ends.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import http.client

log = logging.getLogger("govfn.chronicle.sink")

_IDLE_POLL_S = 0.5

Row = tuple[int, str, str, bytes]  # seq, cid, type, canonical body


@dataclass
class OutboxSender:
    ledger_path: Path
    url: str
    ca_certs: str | None = None
    batch: int = 64
    lease_s: float = 30.0
    first_delay_s: float = 0.2
    max_delay_s: float = 10.0
    timeout_s: float = 5.0
    sent: int = 0
    failures: int = 0

    table: ClassVar[str] = "outbox"
    what: ClassVar[str] = "K_SINK"  # how errors and logs name the destination

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{self.what} must be an http(s) URL, got {self.url!r}")
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

    # -- what a destination defines ----------------------------------------------------

    def deliver(self, row: Row) -> bool:
        """Deliver one queued record; True once the destination accepted it."""
        raise NotImplementedError

    def send_idle(self) -> str:
        """What to send when no record is due: "sent", "idle" or "failed"."""
        return "idle"

    def depth_query(self) -> str:
        return f"SELECT count(*) FROM {self.table}"

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the sender thread of this process (again after a fork: threads do not
        survive one, and neither may the database and HTTP connections)."""
        if self._pid != os.getpid():
            self._thread, self._conn, self._http, self._pid = None, None, None, os.getpid()
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"govfn-{self.table}", daemon=True
            )
            self._thread.start()

    def notify(self) -> None:
        """New records were queued: send now rather than at the next poll."""
        if self._pid != os.getpid() or self._thread is None:
            self.start()
        self._wake.set()

    def stop(self, drain_timeout_s: float = 0.0) -> int:
        """Stop the thread after sending what the destination accepts within the
        timeout; return how many rows are still queued (they stay in the outbox)."""
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
                rows = self._db().execute(self.depth_query()).fetchall()
            return int(rows[0][0])
        except sqlite3.Error:
            return -1

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                outcome = self.send_once()
            except Exception:  # the loop must survive anything, or records stay queued
                log.exception("chronicle %s sender failed; retrying", self.what)
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
            return self.send_idle()
        for row in rows:
            if not self.deliver(row):
                self.failed()
                self._release(row[0], rows)
                self._warn_depth()
                return "failed"
            with self._db_lock:
                self._db().execute(f"DELETE FROM {self.table} WHERE seq = ?", (row[0],))
            self.sent += 1
        self._delay = self.first_delay_s
        return "sent"

    def failed(self) -> None:
        self.failures += 1
        self._delay = min(self._delay * 2, self.max_delay_s)

    def _claim(self) -> list[Row]:
        now = time.time()
        with self._db_lock:
            conn = self._db()
            claimed = conn.execute(
                f"UPDATE {self.table} SET claimed_until = ?, attempts = attempts + 1 WHERE seq IN "
                f"(SELECT seq FROM {self.table} WHERE claimed_until < ? ORDER BY seq LIMIT ?) "
                "RETURNING seq",
                (now + self.lease_s, now, self.batch),
            ).fetchall()
            if not claimed:
                return []
            marks = ",".join("?" * len(claimed))
            return conn.execute(
                f"SELECT seq, cid, type, body FROM records WHERE seq IN ({marks}) ORDER BY seq",
                [row[0] for row in claimed],
            ).fetchall()

    def _release(self, failed_seq: int, rows: list[Row]) -> None:
        """Unclaim the failed record and the rest of its batch, due after the backoff."""
        pending = [seq for seq, *_ in rows if seq >= failed_seq]
        marks = ",".join("?" * len(pending))
        with self._db_lock:
            self._db().execute(
                f"UPDATE {self.table} SET claimed_until = ? WHERE seq IN ({marks})",
                [time.time() + self._delay, *pending],
            )

    def _warn_depth(self) -> None:
        depth = self.depth()
        if depth >= max(100, 2 * self._warned_depth):
            self._warned_depth = depth
            log.warning(
                "chronicle outbox is growing: %d record(s) waiting for %s", depth, self.what
            )

    # -- I/O ---------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(
                self.ledger_path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        return self._conn

    def post(self, path: str, body: bytes, headers: dict[str, str], name: str) -> bool:
        """POST to the destination on its kept-alive connection; True on 2xx."""
        import http.client  # only processes with a destination pay for it

        try:
            connection = self._connection()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            log.warning("chronicle %s %s unreachable: %s", self.what, self.url, exc)
            self._close_http()
            return False
        if 200 <= response.status < 300:
            return True
        log.warning(
            "chronicle %s %s answered %d for %s", self.what, self.url, response.status, name
        )
        if response.will_close:
            self._close_http()
        return False

    def _connection(self) -> http.client.HTTPConnection:
        import http.client

        if self._http is None:
            host, port = self._parts.hostname or "", self._parts.port
            if self._parts.scheme == "https":
                import ssl

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
