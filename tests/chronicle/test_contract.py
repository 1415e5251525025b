"""The Chronicle's contract: every test here runs against each backend (a SQLite file, a
PostgreSQL database), as a SQLAlchemy dialect runs its `testing/suite`. A backend is done
when these pass; what only one backend does is tested beside it (`test_ledger.py`,
`test_postgres_ledger.py`, ...)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from govfn.chronicle import Chronicle, LedgerError, Record, merkle
from govfn.chronicle.backends import open_chronicle
from govfn.chronicle.store import TreeHead

from support.ledgers import BOTH_BACKENDS, location, tamper

pytestmark = BOTH_BACKENDS


def make(n: int, tag: str = "r") -> list[Record]:
    return [Record.build("TEST", {"tag": tag, "n": i}) for i in range(n)]


def test_require_refuses_what_init_has_not_made(ledger: Chronicle) -> None:
    with pytest.raises(LedgerError):
        ledger.require()
    assert "ready" in ledger.init()
    ledger.require()
    assert len(ledger) == 0 and ledger.verify().ok


def test_a_record_is_found_in_the_log_that_holds_it(ledger: Chronicle) -> None:
    records = make(5)
    ledger.append(records)
    (log,) = ledger.own_logs()
    assert [found.log_id for found in ledger.logs()] == [log.log_id]
    assert ledger.log(log.log_id) is not None
    located = ledger.locate(records[3].cid)
    assert located is not None and located[0].log_id == log.log_id and located[1] == 3
    assert ledger.locate("bnothere") is None
    proof = ledger.proof(records[3].cid)
    assert (proof.log, proof.leaf_index, proof.tree_size) == (log.log_id, 3, 5)
    assert ledger.tree_heads() == [TreeHead(log.log_id, *log.head())]
    assert log.head() == (5, merkle.root([merkle.leaf_hash(r.canonical) for r in records]).hex())


def test_proofs_at_an_earlier_size_check_independently(ledger: Chronicle) -> None:
    records = make(11)
    ledger.append(records)
    (log,) = ledger.own_logs()
    leaves = [merkle.leaf_hash(r.canonical) for r in records]
    assert log.root_at(4) == merkle.root(leaves[:4])
    proof = ledger.proof(records[2].cid, 7)
    path = [bytes.fromhex(node) for node in proof.audit_path]
    assert merkle.verify_inclusion(2, 7, leaves[2], path, merkle.root(leaves[:7]))
    consistency = log.consistency(4)
    assert consistency.new_size == 11 and consistency.old_root == merkle.root(leaves[:4]).hex()
    assert merkle.verify_consistency(
        4,
        11,
        merkle.root(leaves[:4]),
        merkle.root(leaves),
        [bytes.fromhex(node) for node in consistency.proof],
    )


def test_asks_outside_the_log_are_value_errors(ledger: Chronicle) -> None:
    ledger.append(make(3))
    (log,) = ledger.own_logs()
    for ask in (
        lambda: log.root_at(4),
        lambda: log.inclusion_proof(3),
        lambda: log.inclusion_proof(0, 4),
        lambda: log.consistency(2, 4),
        lambda: log.consistency(3, 2),
    ):
        with pytest.raises(ValueError):
            ask()


def test_signed_checkpoints_are_kept_per_log_and_only_grow(ledger: Chronicle) -> None:
    ledger.append(make(4))
    (log,) = ledger.own_logs()
    size, root = log.head()
    assert log.store_signed_checkpoint(size, bytes.fromhex(root), "note at 4")
    assert not log.store_signed_checkpoint(size, bytes.fromhex(root), "note at 4")  # stored
    assert not log.store_signed_checkpoint(2, log.root_at(2), "note at 2")  # a smaller tree
    assert log.signed_checkpoints() == ["note at 4"]
    assert [name for name, _ in ledger.logs_to_sign()] == [
        None if log.log_id is None else str(log.log_id)
    ]
    assert ledger.verify().ok  # the signed head is a checkpoint the log still reproduces


def test_checkpointed_heads_are_what_verify_reproduces(ledger: Chronicle) -> None:
    ledger.append(make(6))
    (head,) = ledger.checkpoint_logs()
    (log,) = ledger.own_logs()
    assert head == TreeHead(log.log_id, *log.head())
    report = ledger.verify()
    assert report.ok and report.records == 6
    assert report.root == head.root


def test_the_client_commits_what_it_emits(ledger: Chronicle) -> None:
    client = ledger.client()

    async def emit() -> list[str]:
        return [await client.emit("TEST", {"n": n}) for n in range(3)]

    cids = asyncio.run(emit())
    assert [record.cid for record in ledger.records()] == cids
    assert ledger.verify().ok


def test_append_then_read_back(ledger: Chronicle) -> None:
    records = make(5)
    ledger.append(records[:2])
    ledger.append(records[2:3])
    ledger.append(records[3:])
    assert [r.cid for r in ledger.records()] == [r.cid for r in records]
    assert ledger.get(records[3].cid) == records[3]
    assert ledger.get("bnothere") is None
    report = ledger.verify()
    assert report.ok and report.records == 5


def test_dedupe_skips_stored_cids(ledger: Chronicle) -> None:
    records = make(3)
    ledger.append(records)
    ledger.append([records[1], *make(1, "new")], dedupe=True)
    assert len(ledger) == 4
    assert ledger.verify().ok


def test_edited_body_is_named(ledger: Chronicle) -> None:
    records = make(6)
    ledger.append(records)
    tamper(ledger, [("UPDATE records SET body = ? WHERE seq = 4", (b'{"n":99,"tag":"r"}',))])
    report = ledger.verify()
    assert not report.ok
    assert report.bad_seq == 4 and report.bad_cid == records[3].cid
    assert "CID" in (report.problem or "")


def test_consistent_rewrite_breaks_the_chain(ledger: Chronicle) -> None:
    ledger.append(make(6))
    forged = Record.build("TEST", {"tag": "forged"})
    tamper(
        ledger,
        [("UPDATE records SET body = ?, cid = ? WHERE seq = 2", (forged.canonical, forged.cid))],
    )
    report = ledger.verify()
    assert not report.ok and report.bad_seq == 2 and "chain" in (report.problem or "")


def test_removed_row_is_named(ledger: Chronicle) -> None:
    ledger.append(make(6))
    tamper(ledger, [("DELETE FROM records WHERE seq = 3", ())])
    report = ledger.verify()
    assert not report.ok and "record 3 is missing" in (report.problem or "")


def test_reordered_rows_are_detected(ledger: Chronicle) -> None:
    records = make(4)
    ledger.append(records)
    pair = tamper(
        ledger, [("SELECT seq, cid, body, chain FROM records WHERE seq IN (2, 3) ORDER BY seq", ())]
    )
    tamper(
        ledger,
        [
            (
                "UPDATE records SET cid = ?, body = ?, chain = ? WHERE seq = ?",
                (cid, body, chain, seq),
            )
            for (seq, *_), (_, cid, body, chain) in zip(pair, reversed(pair), strict=True)
        ],
    )
    report = ledger.verify()
    assert not report.ok and report.bad_seq == 2


def test_truncated_tail_fails_against_checkpoint(ledger: Chronicle) -> None:
    ledger.append(make(5))
    [(_, size, _)] = ledger.checkpoint_logs()
    assert size == 5 and ledger.verify().ok
    tamper(ledger, [("DELETE FROM records WHERE seq = 5", ())])
    report = ledger.verify()
    assert not report.ok and "checkpoint" in (report.problem or "")


def test_inclusion_proof_checks_independently(ledger: Chronicle) -> None:
    records = make(9)
    ledger.append(records)
    proof = ledger.proof(records[6].cid).to_dict()
    leaf = merkle.leaf_hash(records[6].canonical)
    path = [bytes.fromhex(node) for node in proof["audit_path"]]  # type: ignore[union-attr]
    assert proof["leaf_hash"] == leaf.hex()
    assert merkle.verify_inclusion(6, 9, leaf, path, bytes.fromhex(str(proof["root"])))
    assert proof["root"] == ledger.tree_heads()[0].root
    with pytest.raises(KeyError):
        ledger.proof("bnothere")


def test_eight_threads_lose_and_duplicate_nothing(ledger: Chronicle) -> None:
    batches = [make(50, f"t{i}") for i in range(8)]

    def write(batch: list[Record]) -> None:
        for record in batch:
            ledger.append([record])

    threads = [threading.Thread(target=write, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    cids = [r.cid for r in ledger.records()]
    assert sorted(cids) == sorted(r.cid for b in batches for r in b)
    assert ledger.verify().ok


def _write_in_process(where: str, tag: str, count: int) -> None:
    with open_chronicle(where) as ledger:
        for record in make(count, tag):
            ledger.append([record])


def test_two_processes_lose_and_duplicate_nothing(ledger: Chronicle) -> None:
    ledger.append(make(1, "init"))
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_in_process, args=(location(ledger), f"p{i}", 200))
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    cids = [r.cid for r in ledger.records()]
    expected = [r.cid for r in make(1, "init") + make(200, "p0") + make(200, "p1")]
    assert len(cids) == len(set(cids)) == 401
    assert set(cids) == set(expected)
    assert ledger.verify().ok


WRITER = """
import sys
from govfn.chronicle import Record
from govfn.chronicle.backends import open_chronicle
ledger = open_chronicle(sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    ledger.append([Record.build("TEST", {"i": i, "pad": "x" * 2000})])
    i += 1
"""


def test_kill_9_mid_write_leaves_a_ledger_that_verifies(ledger: Chronicle, tmp_path: Path) -> None:
    where = location(ledger)
    errors = tmp_path / "writer.err"
    with errors.open("w") as stderr:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, where],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 20
        with open_chronicle(where) as watcher:
            while time.monotonic() < deadline and len(watcher) < 300:
                time.sleep(0.05)
            seen_before_kill = len(watcher)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
        writer.stdout.close()  # type: ignore[union-attr]
    with open_chronicle(where) as ledger:
        count = len(ledger)
        assert count >= seen_before_kill >= 300, errors.read_text()  # nothing committed lost
        report = ledger.verify()
        assert report.ok, report
        payloads = [json.loads(r.canonical)["i"] for r in ledger.records()]
    assert payloads == list(range(count))  # every committed record kept, in order
