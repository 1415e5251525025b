"""The ledger: append, verify, tamper detection, proofs, concurrent writers, crashes.

Tests marked BOTH_BACKENDS run against SQLite and PostgreSQL; the rest are about SQLite.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from govfn.chronicle import Ledger, Record
from govfn.chronicle.sqlite.ledger import LedgerError


def make(n: int, tag: str = "r") -> list[Record]:
    return [Record.build("TEST", {"tag": tag, "n": i}) for i in range(n)]


def test_triggers_refuse_update_and_delete(ledger: Ledger) -> None:
    ledger.append(make(2))
    with closing(sqlite3.connect(ledger.path, isolation_level=None)) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE records SET body = x'00' WHERE seq = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM records WHERE seq = 1")


def test_unwritable_location_raises_ledger_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(LedgerError), Ledger(blocker / "chronicle.db") as ledger:
        ledger.append(make(1))


def test_wal_checkpoints_run_off_the_writers_path(ledger: Ledger) -> None:
    for record in make(50):
        ledger.append([record])
    deadline = time.monotonic() + 10
    while ledger.checkpointer.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ledger.checkpointer.checkpoints >= 1
    auto = ledger._connection().execute("PRAGMA wal_autocheckpoint").fetchall()
    assert auto == [(0,)]  # writers never checkpoint themselves
    ledger.close()
    assert ledger.checkpointer._thread is None
    with Ledger(ledger.path) as reopened:
        assert len(reopened) == 50


def test_the_wal_starts_over_under_steady_appends(ledger: Ledger) -> None:
    """PASSIVE checkpoints alone never copy a log that gains frames all the time, so SQLite
    never starts it over: past `restart_bytes` the checkpointer restarts it between two
    commits, and the file stops growing."""
    ledger.checkpointer.interval_s = 0.02
    ledger.checkpointer.restart_bytes = 256 * 1024
    wal = Path(f"{ledger.path}-wal")
    largest = 0
    for record in make(6000):  # ~12 KB of log a commit: ~70 MB if it never started over
        ledger.append([record])
        largest = max(largest, wal.stat().st_size)
    assert ledger.checkpointer.restarts >= 1
    # Never started over, the log would reach ~70 MB (78 MB measured before the restarts);
    # with them it peaks at ~7 MB, higher while other work starves the checkpointer thread.
    assert largest < 32 * 1024 * 1024
    assert len(ledger) == 6000 and ledger.verify().ok


def test_prepare_creates_the_schema_and_keeps_the_connection_for_appends(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "new" / "c.db")
    ledger.prepare()
    prepared = ledger._conn
    assert ledger.path.exists() and prepared is not None
    with closing(sqlite3.connect(ledger.path)) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    assert {"records", "checkpoints", "outbox"} <= names and mode == "wal"
    ledger.append(make(2))
    assert ledger._conn is prepared
    ledger.close()


def test_a_connection_kept_from_prepare_is_closed_before_a_fork(tmp_path: Path) -> None:
    """The child of a fork (a gunicorn worker) opens its own connection; the parent
    closed its own before forking, and opens another when it writes again."""
    ledger = Ledger(tmp_path / "c.db")
    ledger.prepare()
    assert ledger._conn is not None
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's exit status is the result)
        try:
            ledger.append(make(3, "child"))
            os._exit(0 if len(ledger) == 3 else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert ledger._conn is None
    ledger.append(make(2, "parent"))
    assert len(ledger) == 5 and ledger.verify().ok
    ledger.close()


@pytest.mark.parametrize(("policy", "level"), [("normal", 1), ("full", 2)])
def test_records_are_written_under_the_ledgers_sync_policy(
    tmp_path: Path, policy: str, level: int
) -> None:
    """A new file's schema may be written without fsync (normal); records never are
    written under anything weaker than the policy."""
    for attempt in ("new file", "existing file"):
        with Ledger(tmp_path / "c.db", sync=policy) as ledger:
            ledger.append([Record.build("T", {"attempt": attempt})])
            (synchronous,) = ledger._connection().execute("PRAGMA synchronous").fetchone()
            assert synchronous == level, attempt


def test_a_writer_waits_for_another_process_lock_in_small_steps(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.append(make(1, "first"))
    with closing(
        sqlite3.connect(ledger.path, isolation_level=None, check_same_thread=False)
    ) as other:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        releaser = threading.Timer(0.2, lambda: other.execute("COMMIT"))
        releaser.start()
        started = time.monotonic()
        ledger.append(make(1, "waited"))  # neither fails nor waits past the release by much
        waited = time.monotonic() - started
        releaser.join()
    assert 0.15 <= waited < 5 and len(ledger) == 2 and ledger.verify().ok
    monkeypatch.setattr("govfn.chronicle.sqlite.ledger._LOCK_WAIT_S", 0.1)
    with closing(sqlite3.connect(ledger.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(LedgerError, match="locked"):
            ledger.append(make(1, "gave up"))
        other.execute("ROLLBACK")
    assert len(ledger) == 2


def test_only_the_writing_connection_gives_up_sqlites_busy_wait(ledger: Ledger) -> None:
    with Ledger(ledger.path) as reader:
        ledger.append(make(1))
        assert ledger._connection().execute("PRAGMA busy_timeout").fetchall() == [(0,)]
        assert len(reader) == 1
        assert reader._connection().execute("PRAGMA busy_timeout").fetchall() == [(30000,)]
