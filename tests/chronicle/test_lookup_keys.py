"""Records found by CID through the ledger's lookup keys: by their own CID (show, proof,
re-delivery) and by each CID a lineage hop follows; a ledger from before the keys gets
them filed when first opened. Real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from govfn.chronicle import Ledger, Record, merkle
from govfn.chronicle.lookup_keys import LINKS, link_keys, lookup_key
from govfn.chronicle.records import FUNCTION_COMPLETED, FUNCTION_INVOKED
from govfn.chronicle.sqlite.ledger import _BY_CID


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


def test_a_lookup_by_cid_searches_the_keys_and_scans_only_the_recent_ones(
    tmp_path: Path,
) -> None:
    with Ledger(tmp_path / "c.db") as ledger:
        ledger.append(pipeline(3))
        plan = ledger._connection().execute(f"EXPLAIN QUERY PLAN {_BY_CID}", (1, "x")).fetchall()
    details = [row[-1] for row in plan]
    assert "SEARCH cid_keys USING PRIMARY KEY (key=?)" in details, details
    assert "SEARCH found USING PRIMARY KEY (run=? AND key=?)" in details, details
    # Scanned: the recent keys (fewer than a few thousand), the list of runs, and the
    # handful of entries the view found.
    scans = {d for d in details if d.startswith("SCAN")}
    assert scans <= {"SCAN recent_keys", "SCAN live", "SCAN k"}, details


def test_a_ledger_from_before_the_keys_gets_them_on_open(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    records = pipeline(3000)
    with Ledger(path) as ledger:
        ledger.append(records)
    with sqlite3.connect(path) as conn:  # what earlier versions wrote: no keys at all
        conn.execute("DROP TRIGGER record_appends_insert")
        conn.execute("DROP VIEW record_appends")
        conn.execute("DROP VIEW cid_index")
        for table in ("cid_keys", "recent_keys", "run_keys", "key_runs", "key_merges"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM ledger_settings WHERE name = 'cid_keys'")
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
