"""WAL checkpoints off the writers' path.

A WAL checkpoint copies committed pages into the database file and fsyncs it: a few
milliseconds that, left to SQLite's automatic checkpoints, land on whichever commit
crosses the threshold (a request's p99). The ledger turns automatic checkpoints off and
pokes a `BackgroundCheckpointer`, whose daemon thread runs a PASSIVE checkpoint (it never
blocks writers or readers) at most every `interval_s` while there is something new.

A PASSIVE checkpoint copies the frames committed before it began; under steady load new
ones always follow, so the log is never wholly copied and SQLite never starts it over: it
grew by ~40 MB a second under `make bench`'s load, without end. Once the log holds more
than `restart_bytes` of frames, the thread follows the PASSIVE checkpoint with a RESTART
one, tried until it finds the write lock free between two commits (`_restart`): it copies
the few frames the PASSIVE one left and lets the next commit write the log from its start;
`WAL_SIZE_LIMIT` (SQLite's `journal_size_limit`, set on the ledger's connections) then cuts
the file back.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from govfn.databases.sqlite import PAGE_CACHE_KIB

log = logging.getLogger("govfn.chronicle")


WAL_RESTART_BYTES = 16 * 1024 * 1024
WAL_SIZE_LIMIT = 64 * 1024 * 1024
RESTART_TRIES = 2000
RESTART_STEP_S = 100e-6
BUSY_TIMEOUT_S = 30.0  # how long the thread's PASSIVE checkpoints wait for a lock


class BackgroundCheckpointer:
    def __init__(
        self, path: Path, interval_s: float = 0.5, restart_bytes: int = WAL_RESTART_BYTES
    ) -> None:
        self.path = path
        self.interval_s = interval_s
        self.restart_bytes = restart_bytes
        self.checkpoints = 0
        self.restarts = 0
        self._page_bytes = 0
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
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
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

    def _restart(self, conn: sqlite3.Connection) -> bool:
        """A RESTART checkpoint, tried between two commits. While it waits for the write
        lock it holds new writers off, and SQLite's busy handler waits in steps of 1 ms and
        more: it is tried without waiting instead (it then copies what it can, as PASSIVE),
        again every `RESTART_STEP_S`, until it finds the lock free."""
        conn.execute("PRAGMA busy_timeout=0")
        try:
            for _ in range(RESTART_TRIES):
                ((busy, _, _),) = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
                if not busy:
                    return True
                time.sleep(RESTART_STEP_S)
            return False
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")

    def _page_size(self, conn: sqlite3.Connection) -> int:
        if not self._page_bytes:
            self._page_bytes = int(conn.execute("PRAGMA page_size").fetchall()[0][0])
        return self._page_bytes

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            ((_, frames, _),) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
            if frames * self._page_size(conn) > self.restart_bytes and self._restart(conn):
                self.restarts += 1
        except sqlite3.Error as exc:  # a later poke tries again; SQLite keeps the WAL
            log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
