"""The SQLite ledger's lookup keys filed in sorted runs (`govfn.chronicle.sqlite.key_runs`): every
record is found by its CID, exactly once, at every stage of filing (recent, in a run, while
runs merge, after merged-away runs are deleted), across connections, and in a ledger whose
keys were filed before runs existed. Real SQLite files."""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govfn.chronicle import Ledger, Record
from govfn.chronicle.sqlite import key_runs


def make(n: int, tag: str = "k") -> list[Record]:
    return [Record.build("TEST", {"tag": tag, "n": i, "pad": "x" * 200}) for i in range(n)]


@pytest.fixture
def small_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of 8 keys, merged 3 at a time in chunks of about 5: a few hundred records go
    through several levels of merges."""
    monkeypatch.setattr(key_runs, "RUN_SIZE", 8)
    monkeypatch.setattr(key_runs, "FAN_IN", 3)
    monkeypatch.setattr(key_runs, "CHUNK", 5)


def index_entries(ledger: Ledger) -> list[int]:
    rows = ledger._connection().execute("SELECT seq FROM cid_index ORDER BY seq").fetchall()
    return [seq for (seq,) in rows]


def runs(ledger: Ledger) -> list[tuple[int, int, int]]:
    conn = ledger._connection()
    return conn.execute("SELECT level, state, size FROM key_runs ORDER BY run").fetchall()


def all_found(ledger: Ledger, records: list[Record]) -> bool:
    return all(ledger.get(r.cid) == r for r in records) and index_entries(ledger) == list(
        range(1, len(records) + 1)
    )


def test_every_record_is_found_once_at_every_step_of_filing(
    tmp_path: Path, small_runs: None
) -> None:
    records = make(300)
    with Ledger(tmp_path / "c.db") as ledger:
        conn = ledger._connection()
        levels_seen: set[int] = set()
        states_seen: set[int] = set()
        merging_seen = False
        appended: list[Record] = []
        for start in range(0, len(records), 7):
            batch = records[start : start + 7]
            ledger.append(batch)  # an append takes filing steps itself, now and then
            appended += batch
            while key_runs.file_step(conn):
                merging_seen |= bool(conn.execute("SELECT 1 FROM key_merges").fetchall())
                for level, state, _ in runs(ledger):
                    levels_seen.add(level)
                    states_seen.add(state)
                assert all_found(ledger, appended)
            assert all_found(ledger, appended)
        assert merging_seen and {key_runs.BUILDING, key_runs.MERGED} <= states_seen
        assert max(levels_seen) >= 3  # merged runs were merged again
        ledger.file_keys()
        left = conn.execute("SELECT count(*) FROM recent_keys").fetchall()
        assert left == [(0,)] and all_found(ledger, records)
        assert all(state == key_runs.LIVE for _, state, _ in runs(ledger))
        filed = conn.execute("SELECT count(*) FROM run_keys").fetchall()
        assert filed == [(300,)]  # merged-away runs deleted, nothing twice


def test_appends_file_their_keys_as_they_go(tmp_path: Path) -> None:
    records = make(5 * key_runs.RUN_SIZE)
    with Ledger(tmp_path / "c.db") as ledger:
        for start in range(0, len(records), 16):
            ledger.append(records[start : start + 16])
        recent = ledger._connection().execute("SELECT count(*) FROM recent_keys").fetchall()
        assert recent[0][0] < key_runs.RUN_SIZE + 16
        assert sum(size for _, state, size in runs(ledger) if state == key_runs.LIVE) >= (
            4 * key_runs.RUN_SIZE
        )
        assert all(ledger.get(r.cid) == r for r in random.Random(3).sample(records, 200))


def test_group_commits_write_a_third_of_the_log_they_did(tmp_path: Path) -> None:
    """One page of keys per commit, not one per record: 16 records a commit used to write
    ~5.9 KB of write-ahead log per record (a random index page each), now under 2 KB."""
    records = make(24_000)
    with Ledger(tmp_path / "c.db") as ledger:
        ledger.checkpointer.poke = lambda: None  # type: ignore[method-assign]
        for start in range(0, 20_000, 500):
            ledger.append(records[start : start + 500])
        ledger.file_keys()
        ledger._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for start in range(20_000, 24_000, 16):
            ledger.append(records[start : start + 16])
        per_record = Path(f"{ledger.path}-wal").stat().st_size / 4000
        assert per_record < 2500, per_record
        assert all(ledger.get(r.cid) == r for r in records[20_000::97])


def test_two_connections_filing_in_turn_agree(tmp_path: Path, small_runs: None) -> None:
    """Each step decides what to do from what the file holds, so the processes sharing a
    file (two connections here) can take steps in any order."""
    records = make(200)
    path = tmp_path / "c.db"
    with Ledger(path) as writer, Ledger(path) as other:
        other_conn = other._connection()
        for start in range(0, len(records), 9):
            writer.append(records[start : start + 9])
            for _ in range(3):
                key_runs.file_step(other_conn)
            assert other.get(records[start].cid) == records[start]
        key_runs.file_all(other_conn)
        assert all_found(writer, records) and all_found(other, records)


def test_a_ledger_from_before_the_runs_keeps_its_keys_and_files_new_ones_in_runs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.db"
    old = make(3000, "old")
    with Ledger(path) as ledger:
        ledger.append(old)
    with sqlite3.connect(path) as conn:  # what the previous version wrote: keys in cid_keys
        conn.execute("INSERT INTO cid_keys(key, seq) SELECT key, seq FROM cid_index")
        conn.execute("DROP TRIGGER record_appends_insert")
        conn.execute(
            "CREATE TRIGGER record_appends_insert INSTEAD OF INSERT ON record_appends BEGIN "
            "INSERT INTO records(cid, type, body, chain) VALUES (NEW.cid, NEW.type, NEW.body, "
            "govfn_chain((SELECT chain FROM records ORDER BY seq DESC LIMIT 1), NEW.leaf)); "
            "INSERT INTO cid_keys(key, seq) VALUES (NEW.key, (SELECT max(seq) FROM records)); "
            "END"
        )
        conn.execute("DROP VIEW cid_index")
        conn.execute("DROP VIEW key_filing")
        for table in ("recent_keys", "run_keys", "key_runs", "key_merges"):
            conn.execute(f"DROP TABLE {table}")
    new = make(2500, "new")
    with Ledger(path) as ledger:
        ledger.append(new)
        conn = ledger._connection()
        assert conn.execute("SELECT count(*) FROM cid_keys").fetchall() == [(3000,)]
        assert runs(ledger), "the new records' keys were filed in runs"
        assert all_found(ledger, old + new)
        assert ledger.verify().ok


def test_a_ledger_whose_trigger_searched_for_the_seq_gets_the_current_one(
    tmp_path: Path,
) -> None:
    """The append trigger of the release before filed each key under `max(seq)` of
    `records`; opened now, the file gets the current trigger and keeps every key."""
    path = tmp_path / "c.db"
    old = make(300, "old")
    with Ledger(path) as ledger:
        ledger.append(old)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER record_appends_insert")
        conn.execute(
            "CREATE TRIGGER record_appends_insert INSTEAD OF INSERT ON record_appends BEGIN "
            "INSERT INTO records(cid, type, body, chain) VALUES (NEW.cid, NEW.type, NEW.body, "
            "govfn_chain((SELECT chain FROM records ORDER BY seq DESC LIMIT 1), NEW.leaf)); "
            "INSERT INTO recent_keys(seq, key) VALUES ((SELECT max(seq) FROM records), NEW.key); "
            "END"
        )
    new = make(200, "new")
    with Ledger(path) as ledger:
        for start in range(0, len(new), 7):
            ledger.append(new[start : start + 7])
        ((trigger,),) = (
            ledger._connection()
            .execute("SELECT sql FROM sqlite_master WHERE name = 'record_appends_insert'")
            .fetchall()
        )
        assert "last_insert_rowid()" in trigger and "max(seq)" not in trigger
        assert index_entries(ledger) == list(range(1, 501))
        assert all_found(ledger, old + new)
        ledger.file_keys()
        assert all_found(ledger, old + new)
        assert ledger.verify().ok


def _steps(draw_sizes: list[int], filing: list[int]) -> Iterator[tuple[str, int]]:
    for size, steps in zip(draw_sizes, filing, strict=True):
        yield "append", size
        yield "file", steps


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=25),
    st.data(),
)
def test_any_order_of_appends_and_steps_finds_every_record_once(
    sizes: list[int], data: st.DataObject
) -> None:
    filing = data.draw(st.lists(st.integers(0, 12), min_size=len(sizes), max_size=len(sizes)))
    saved = (key_runs.RUN_SIZE, key_runs.FAN_IN, key_runs.CHUNK)
    key_runs.RUN_SIZE, key_runs.FAN_IN, key_runs.CHUNK = 6, 2, 4
    try:
        with tempfile.TemporaryDirectory() as scratch:
            ledger = Ledger(Path(scratch) / "c.db")
            with ledger:
                records: list[Record] = []
                conn = ledger._connection()
                for action, count in _steps(sizes, filing):
                    if action == "append":
                        batch = make(count, f"p{len(records)}")
                        ledger.append(batch)
                        records += batch
                    else:
                        for _ in range(count):
                            key_runs.file_step(conn)
                    assert index_entries(ledger) == list(range(1, len(records) + 1))
                assert all(ledger.get(r.cid) == r for r in records)
    finally:
        key_runs.RUN_SIZE, key_runs.FAN_IN, key_runs.CHUNK = saved
    assert not os.path.exists(scratch)
