"""Records found by CID through the ledger's lookup keys: by their own CID (show, proof,
re-delivery) and by each CID a lineage hop follows; a ledger from before the keys gets
them filed when first opened. Real SQLite files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from govfn.chronicle import Ledger, Record, merkle
from govfn.chronicle.ledger import BY_CID, file_keys
from govfn.chronicle.lookup_keys import LINKS, link_keys, lookup_key
from govfn.chronicle.records import FUNCTION_COMPLETED, FUNCTION_INVOKED


def pipeline(n: int) -> list[Record]:
    records = []
    for i in range(n):
        invoked = Record.build(
            FUNCTION_INVOKED,
            {"invocation_id": f"run-{i}", "trigger_event_cid": f"event-{i}", "input_cid": "same"},
        )
        completed = Record.build(
            FUNCTION_COMPLETED,
            {
                "invocation_id": f"run-{i}",
                "invoked_cid": invoked.cid,
                "output_cid": f"out-{i}",
                "reply_cid": f"reply-{i}",
            },
        )
        records += [invoked, completed]
    return records


GOVFN = str(Path(sys.executable).with_name("govfn"))


def govfn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GOVFN, "chronicle", *args], capture_output=True, text=True, timeout=120, check=False
    )


def naming(ledger: Ledger, text: str, limit: int) -> list[Record]:
    found = ledger.records_naming(text, limit)
    positions = [position for position, _ in found]
    assert positions == sorted(ledger.leaf_index(r.cid) or 0 for _, r in found)
    return [record for _, record in found]


def test_records_are_found_by_their_cid_and_by_every_link(tmp_path: Path) -> None:
    records = pipeline(50)
    with Ledger(tmp_path / "c.db") as ledger:
        ledger.append(records[:40])
        for record in records[40:]:
            ledger.append([record])
        for position in (0, 7, 41, 99):
            record = records[position]
            assert ledger.get(record.cid) == record
            assert ledger.leaf_index(record.cid) == position
            proof = ledger.proof(record.cid)
            _, root = ledger.head()
            assert merkle.verify_inclusion(
                position,
                100,
                bytes.fromhex(proof.leaf_hash),
                [bytes.fromhex(node) for node in proof.audit_path],
                bytes.fromhex(root),
            )
        assert ledger.get("bafy-not-stored") is None and ledger.leaf_index("nope") is None
        invoked, completed = records[14], records[15]
        assert naming(ledger, invoked.cid, 10) == [invoked]  # links not filed yet
        assert naming(ledger, "run-7", 10) == []
        assert ledger.file_links(batch=16) == 100 and ledger.file_links() == 0
        assert naming(ledger, invoked.cid, 10) == [invoked, completed]
        assert naming(ledger, "run-7", 10) == [invoked, completed]
        assert naming(ledger, "event-7", 10) == [invoked]
        assert naming(ledger, "out-7", 10) == naming(ledger, "reply-7", 10)
        assert naming(ledger, "out-7", 10) == [completed]
        assert len(naming(ledger, "same", 1000)) == 50  # one input, every invocation
        assert len(naming(ledger, "same", 3)) == 3
        ledger.append(records[:5], dedupe=True)  # re-delivered: found, not stored again
        assert len(ledger) == 100


def test_keys_name_each_link_once() -> None:
    payload = {name: f"v-{name}" for name in LINKS} | {"input_cid": "v-trigger_event_cid"}
    keys = link_keys(payload)
    assert keys[0] == lookup_key("v-trigger_event_cid") and len(set(keys)) == len(LINKS) - 1
    assert link_keys({"output_cid": 3, "reply_cid": "", "other_cid": "x"}) == []


def test_links_appended_after_a_filing_are_filed_by_the_next(tmp_path: Path) -> None:
    records = pipeline(6)
    with Ledger(tmp_path / "c.db") as ledger:
        ledger.append(records[:4])
        assert ledger.file_links() == 4
        ledger.append(records[4:])
        assert naming(ledger, "out-5", 5) == []
        assert ledger.file_links() == 8
        assert naming(ledger, "out-5", 5) == [records[11]]
        assert naming(ledger, "out-1", 5) == [records[3]]


def test_a_lookup_by_cid_searches_the_keys_and_scans_nothing(tmp_path: Path) -> None:
    with Ledger(tmp_path / "c.db") as ledger:
        ledger.append(pipeline(3))
        plan = ledger._connection().execute(f"EXPLAIN QUERY PLAN {BY_CID}", (1, "x", 1)).fetchall()
    details = [row[-1] for row in plan]
    assert any("SEARCH k USING PRIMARY KEY (key=?)" in d for d in details), details
    assert not any(d.startswith("SCAN") for d in details), details


def test_a_ledger_from_before_the_keys_gets_them_on_open(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    records = pipeline(3000)
    with Ledger(path) as ledger:
        ledger.append(records)
    with sqlite3.connect(path) as conn:  # what earlier versions wrote: no keys at all
        conn.execute("DROP TABLE cid_keys")
        conn.execute("DELETE FROM ledger_settings WHERE name = 'keys_through'")
    with Ledger(path) as ledger:
        assert ledger.leaf_index(records[-1].cid) == 5999
        assert ledger.get(records[4321].cid) == records[4321]
        assert naming(ledger, records[-1].cid, 5) == [records[-1]]
        filed = ledger._connection().execute("SELECT count(*) FROM cid_keys").fetchall()
        assert filed == [(6000,)]
        ledger.file_links()
        filed = ledger._connection().execute("SELECT count(*) FROM cid_keys").fetchall()
        assert filed == [(6000 + sum(len(link_keys(r.payload)) for r in records),)]
        ledger.append(pipeline(3001)[-2:])
        assert ledger.leaf_index(pipeline(3001)[-1].cid) == 6001
        assert ledger.verify().ok


def keys_mark(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT value FROM ledger_settings WHERE name = 'keys_through'")
        return int(rows.fetchall()[0][0])


def test_records_are_found_before_and_after_their_keys_are_filed(tmp_path: Path) -> None:
    """Appends leave the keys of their CIDs to be filed later: until then a lookup finds a
    record past the mark, from this process and from the CLI in another one."""
    path = tmp_path / "c.db"
    records = pipeline(10)
    with Ledger(path) as ledger:
        ledger.checkpointer.before_checkpoint = None  # hold the background filing off
        ledger.append(records[:10])
        ledger.append(records[:10] + records[10:12], dedupe=True)  # found while unfiled
        assert len(ledger) == 12
        assert file_keys(ledger._connection()) == 12 and keys_mark(path) == 12
        for record in records[12:]:
            ledger.append([record])
        assert keys_mark(path) == 12  # the last eight are past the mark
        for position in (3, 11, 12, 19):  # filed, the last filed, unfiled, the newest
            record = records[position]
            assert ledger.get(record.cid) == record and ledger.leaf_index(record.cid) == position
            assert ledger.proof(record.cid).leaf_index == position
            assert naming(ledger, record.cid, 5) == [record]
            shown = govfn("show", record.cid, "--ledger", str(path))
            assert shown.returncode == 0, shown.stderr
            assert json.loads(shown.stdout)["cid"] == record.cid
        ledger.file_links()
        assert naming(ledger, "run-9", 5) == records[18:20]  # the links of unfiled records
        ledger.append(records[15:], dedupe=True)
        assert len(ledger) == 20
        with closing(sqlite3.connect(path)) as conn:
            (own,) = conn.execute("SELECT count(*) FROM cid_keys WHERE seq > 12").fetchone()
        assert own == sum(len(link_keys(r.payload)) for r in records[12:])  # no own key yet
        ledger.checkpointer.before_checkpoint = file_keys
    assert keys_mark(path) == 20  # closing files the rest
    with Ledger(path) as reopened:
        assert [reopened.leaf_index(r.cid) for r in records] == list(range(20))
        assert reopened.verify().ok


def test_an_append_files_the_keys_when_filing_falls_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("govfn.chronicle.ledger._KEYS_UNFILED_MAX", 8)
    records = pipeline(5)
    with Ledger(tmp_path / "c.db") as ledger:
        ledger.checkpointer.before_checkpoint = None  # a thread that never gets the lock
        for record in records[:7]:
            ledger.append([record])
        assert keys_mark(ledger.path) == 0
        ledger.append(records[7:9])  # the 9th unfiled record: this append files them
        assert keys_mark(ledger.path) == 9
        ledger.append(records[9:])
        assert keys_mark(ledger.path) == 9
        assert [ledger.leaf_index(r.cid) for r in records] == list(range(10))


OLD_APPEND_PATH = """
CREATE VIEW record_appends(cid, type, body, leaf, key) AS
    SELECT cid, type, body, chain, NULL FROM records WHERE 0;
CREATE TRIGGER record_appends_insert INSTEAD OF INSERT ON record_appends
BEGIN
    INSERT INTO records(cid, type, body, chain) VALUES (NEW.cid, NEW.type, NEW.body,
        govfn_chain((SELECT chain FROM records ORDER BY seq DESC LIMIT 1), NEW.leaf));
    INSERT INTO cid_keys(key, seq) VALUES (NEW.key, (SELECT max(seq) FROM records));
END;
CREATE TRIGGER records_to_tree AFTER INSERT ON records
BEGIN INSERT INTO merkle_nodes(seq, hashes) VALUES (NEW.seq, govfn_tree(NEW.seq, NEW.body)); END;
DELETE FROM ledger_settings WHERE name = 'keys_through';
INSERT INTO ledger_settings(name, value) VALUES ('cid_keys', 1);
"""


def test_a_ledger_whose_appends_filed_the_keys_in_a_trigger_keeps_working(
    tmp_path: Path,
) -> None:
    """Earlier versions appended through a view whose triggers computed the chain, the
    tree hashes (SQL functions of the writing process) and filed each key; this version
    drops them and takes every key as filed."""
    path = tmp_path / "c.db"
    records = pipeline(30)
    with Ledger(path) as ledger:
        ledger.append(records[:40])
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executescript(OLD_APPEND_PATH)
    with Ledger(path) as ledger:
        ledger.checkpointer.before_checkpoint = None
        ledger.append(records[40:])
        assert keys_mark(path) == 40
        assert [ledger.leaf_index(r.cid) for r in records] == list(range(60))
        assert ledger.verify().ok
        leaves = [merkle.leaf_hash(r.canonical) for r in records]
        assert ledger.head() == (60, merkle.root(leaves).hex())
        with closing(sqlite3.connect(path)) as conn:
            left = conn.execute(
                "SELECT name FROM sqlite_master WHERE name IN "
                "('record_appends', 'record_appends_insert', 'records_to_tree')"
            ).fetchall()
            assert left == []
            assert conn.execute("SELECT count(*) FROM cid_keys").fetchall() == [(40,)]
