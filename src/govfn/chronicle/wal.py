"""WAL checkpoints off the writers' path.

A WAL checkpoint copies committed pages into the database file and fsyncs it: a few
milliseconds that, left to SQLite's automatic checkpoints, land on whichever commit
crosses the threshold (a request's p99). The ledger turns automatic checkpoints off and
pokes a `BackgroundCheckpointer`, whose daemon thread runs a PASSIVE checkpoint (it never
blocks writers or readers) at most every `interval_s` while there is something new.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

from govfn.sqlite import PAGE_CACHE_KIB

log = logging.getLogger("govfn.chronicle")


class BackgroundCheckpointer:
    def __init__(self, path: Path, interval_s: float = 0.5) -> None:
        self.path = path
        self.interval_s = interval_s
        self.checkpoints = 0
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def poke(self) -> None:
        """New commits exist: checkpoint soon (starts this process's thread if needed)."""
        self._dirty.set()
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._stop.clear()
                    self._thread = threading.Thread(
                        target=self._run, name="govfn-wal-checkpoint", daemon=True
                    )
                    self._thread.start()
                    self._pid = os.getpid()

    def stop(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            self._stop.set()
            self._dirty.set()
            self._thread.join(timeout=10)
        self._thread, self._pid = None, 0

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        try:
            while not self._stop.is_set():
                self._dirty.wait()
                if self._stop.wait(self.interval_s):
                    break
                self._dirty.clear()
                self._checkpoint(conn)
            self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.Error as exc:  # a later poke tries again; SQLite keeps the WAL
            log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
