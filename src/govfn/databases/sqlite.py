"""Opening the SQLite files that several worker processes share (ledger, idempotency store).

Switching a new file to WAL and creating its schema need locks that SQLite does not wait
for (busy_timeout does not cover a journal-mode change), so two processes opening the same
new file at once, or one opening while another writes, can see "database is locked".
`open_shared` touches neither when they are already done, and retries, bounded, when it must.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable

_ATTEMPTS = 100
# Each process's connection keeps a page cache of its own, SQLite's default 2 MiB. Appends
# touch the last pages of each table and lookups read a few B-tree pages that the kernel's
# page cache holds anyway; 256 KiB keeps a serving process ~1.8 MB smaller after load.
PAGE_CACHE_KIB = 256


def open_shared(
    path: str | os.PathLike[str],
    *,
    schema: str,
    schema_ready: Callable[[sqlite3.Connection], bool],
    synchronous: str = "NORMAL",
) -> sqlite3.Connection:
    """A WAL-mode autocommit connection usable from any thread, with `schema` in place."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    try:
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        for attempt in range(_ATTEMPTS):
            try:
                if conn.execute("PRAGMA journal_mode").fetchall()[0][0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL").fetchall()
                if not schema_ready(conn):
                    conn.executescript(schema)
                return conn
            except sqlite3.OperationalError:
                if attempt == _ATTEMPTS - 1:
                    raise
                time.sleep(0.01 + 0.001 * attempt)
    except BaseException:
        conn.close()
        raise
    raise AssertionError("unreachable")
