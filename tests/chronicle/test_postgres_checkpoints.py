"""Signed checkpoints and O(log n) proofs on the PostgreSQL Chronicle, per log, on a real
server: stored tree hashes against the RFC 6962 reference (a sweep of sizes, commits in
doubt, a version 1 database upgraded), `govfn chronicle checkpoint --key`, `verify
--checkpoint --verifier` and `consistency --log` (the notes checked by the independent
C2SP reading in support/spec_note.py), tampering a superuser can do (a flipped byte, a
dropped record, a rewritten and re-signed log), and notes through the shared outbox."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from govfn.chronicle import Record, merkle, tree
from govfn.chronicle.cid import cid_of_bytes
from govfn.chronicle.postgres.ledger import PostgresLedger
from govfn.chronicle.postgres.outbox import PostgresOutbox
from govfn.chronicle.postgres.schema import DDL_V1
from govfn.chronicle.signing.checkpoint import Checkpoint
from govfn.chronicle.signing.note import Signer
from govfn.chronicle.signing.publisher import CheckpointPublisher
from govfn.chronicle.sink import SinkSender
from govfn.chronicle.store import GENESIS, chain_next
from govfn.cli.group import cli

from support import spec_note
from support.http_server import post_echo_events, start_server, stop_server
from support.sink_double import SinkDouble
from support.waiting import wait_for

NAME = "govfn.example/pods"


def make(n: int, tag: str = "r") -> list[Record]:
    return [Record.build("TEST", {"tag": tag, "n": i}) for i in range(n)]


def leaves_of(ledger: PostgresLedger, log_id: int) -> list[bytes]:
    with ledger.connection() as conn:
        rows = conn.execute(
            "SELECT body FROM chronicle.records WHERE log_id = %s ORDER BY seq", (log_id,)
        ).fetchall()
    return [merkle.leaf_hash(bytes(body)) for (body,) in rows]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def superuser(uri: str) -> psycopg.Connection[tuple[object, ...]]:
    """A tamperer's connection: the append-only triggers of the records disabled."""
    conn = psycopg.connect(uri, autocommit=True)
    conn.execute("ALTER TABLE chronicle.records DISABLE TRIGGER USER")
    return conn


# -- stored tree hashes -----------------------------------------------------------------


def test_heads_and_proofs_from_stored_hashes_match_the_reference_at_every_size(
    postgres_uri: str,
) -> None:
    with PostgresLedger(postgres_uri) as ledger:
        batches = [1, 2, 1, 3, 5, 1, 8, 4, 1, 7, 2, 6]  # batches of all sizes

        async def append_all() -> None:  # two logs: the synchronous one and lane 0's
            for number, size in enumerate(batches):
                records = make(size, f"b{number}")
                if number % 2:
                    await ledger.append_async(records)
                else:
                    ledger.append(records)

        asyncio.run(append_all())
        assert len(ledger.logs()) == 2
        for log_id in ledger.log_ids():
            leaves = leaves_of(ledger, log_id)
            log = ledger.log(log_id)
            total = len(leaves)
            assert total in (sum(batches[::2]), sum(batches[1::2]))
            assert log.head() == (total, merkle.root(leaves).hex())
            for new in range(total + 1):
                assert log.root_at(new) == merkle.root(leaves[:new])
                for old in range(new + 1):
                    proof = log.consistency(old, new)
                    expected = merkle.consistency_proof(old, leaves[:new])
                    assert proof.proof == [node.hex() for node in expected], (old, new)
                    assert proof.old_root == merkle.root(leaves[:old]).hex()
                    if 0 < old < new:
                        assert merkle.verify_consistency(
                            old,
                            new,
                            merkle.root(leaves[:old]),
                            merkle.root(leaves[:new]),
                            [bytes.fromhex(node) for node in proof.proof],
                        )
                for index in range(new):
                    path = log.inclusion_proof(index, new).audit_path
                    reference = merkle.inclusion_proof(index, leaves[:new])
                    assert path == [node.hex() for node in reference]
        assert ledger.verify().ok
        with pytest.raises(ValueError, match="no consistency proof"):
            log.consistency(3, total + 1)


def test_a_head_and_a_proof_need_only_a_logarithmic_number_of_rows(postgres_uri: str) -> None:
    with PostgresLedger(postgres_uri) as ledger:
        ledger.append(make(1024))
        (log_id,) = ledger.log_ids()
        leaves = leaves_of(ledger, log_id)
        # The audit path of the last leaf is one subtree per level: [1022, 1023),
        # [1020, 1022), ..., [0, 512); each is stored with its last record. The root is
        # stored with record 1024. Every other record's stored hashes are wiped out.
        kept = [1024, 1023, *(1024 - 2**level for level in range(1, 10))]
        with superuser(postgres_uri) as conn:
            conn.execute(
                "UPDATE chronicle.records SET tree = NULL WHERE log_id = %s AND seq <> ALL(%s)",
                (log_id, kept),
            )
        log = ledger.log(log_id)
        assert log.head() == (1024, merkle.root(leaves).hex())
        proof = log.inclusion_proof(1023)
        assert proof.audit_path == [node.hex() for node in merkle.inclusion_proof(1023, leaves)]
        assert not ledger.verify().ok  # the wiped hashes are missed by verify, not by proofs


def test_a_commit_in_doubt_resumes_the_tree_from_the_database(postgres_uri: str) -> None:
    with PostgresLedger(postgres_uri) as ledger:
        first, doubtful, later = make(3, "a"), make(4, "b"), make(2, "c")
        ledger.append(first)
        ledger.append(doubtful)
        log = ledger._log
        assert log is not None
        log.seq, log.chain = 3, b"unknown"  # as if the commit of `doubtful` were unknown
        log.doubt()
        ledger.append([*doubtful, *later])
        writer_log = log.log_id

        async def doubtful_async() -> None:
            await ledger.append_async(make(5, "d"))
            (writer,) = ledger._writers.values()
            assert writer.log is not None
            writer.log.doubt()
            await ledger.append_async(make(3, "e"))

        asyncio.run(doubtful_async())
        assert ledger.verify().ok
        for log_id in ledger.log_ids():
            leaves = leaves_of(ledger, log_id)
            assert ledger.log(log_id).head() == (len(leaves), merkle.root(leaves).hex())
        assert len(leaves_of(ledger, writer_log)) == 9


def test_a_version_1_database_gets_its_tree_hashes_when_upgraded(postgres_uri: str) -> None:
    records = make(11, "old")
    with psycopg.connect(postgres_uri, autocommit=True) as conn:  # what govfn wrote before
        conn.execute(DDL_V1)
        conn.execute("INSERT INTO chronicle.schema_version (version) VALUES (1)")
        for log_id, part in ((1, records[:7]), (2, records[7:])):
            conn.execute("INSERT INTO chronicle.logs (writer) VALUES ('old pod')")
            chain = GENESIS
            for seq, record in enumerate(part, start=1):
                chain = chain_next(chain, merkle.leaf_hash(record.canonical))
                conn.execute(
                    "INSERT INTO chronicle.records (log_id, seq, cid, type, body, chain) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (log_id, seq, record.cid, record.type, record.canonical, chain),
                )
    with PostgresLedger(postgres_uri) as ledger:
        ledger.prepare()  # upgrades, under the advisory lock
        for log_id, part in ((1, records[:7]), (2, records[7:])):
            leaves = [merkle.leaf_hash(r.canonical) for r in part]
            log = ledger.log(log_id)
            assert log.head() == (len(part), merkle.root(leaves).hex())
            assert log.inclusion_proof(2).audit_path == [
                node.hex() for node in merkle.inclusion_proof(2, leaves)
            ]
        ledger.append(make(2, "new"))
        report = ledger.verify()
        with ledger.connection() as conn:
            versions = conn.execute("SELECT version FROM chronicle.schema_version").fetchall()
            refused = None
            try:
                conn.execute("UPDATE chronicle.records SET tree = NULL WHERE log_id = 1")
            except psycopg.errors.RaiseException as exc:
                refused = str(exc)
    assert report.ok and report.records == 13
    assert versions == [(1,), (2,)]
    assert refused is not None and "append-only" in refused  # the trigger is back on


def test_a_stored_hash_that_was_changed_is_found(postgres_uri: str) -> None:
    with PostgresLedger(postgres_uri) as ledger:
        ledger.append(make(6))
        with superuser(postgres_uri) as conn:
            conn.execute("UPDATE chronicle.records SET tree = %s WHERE seq = 4", (b"\0" * 96,))
        report = ledger.verify()
    assert not report.ok and report.bad_seq == 4
    assert "its stored Merkle tree hashes do not match the records" in (report.problem or "")


# -- signing per log --------------------------------------------------------------------


@pytest.fixture
def two_logs(postgres_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database with two logs (5 and 3 records), GOVFN_CHRONICLE naming it."""
    monkeypatch.setenv("GOVFN_CHRONICLE", postgres_uri)
    for name in ("GOVFN_CHRONICLE_SIGNING_KEY", "GOVFN_CHRONICLE_ORIGIN"):
        monkeypatch.delenv(name, raising=False)
    with PostgresLedger(postgres_uri) as one, PostgresLedger(postgres_uri) as two:
        one.append(make(5, "one"))
        two.append(make(3, "two"))
    yield postgres_uri


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    result = run("chronicle", "keygen", NAME, "--out", str(tmp_path / "keys"))
    assert result.exit_code == 0, result.output
    return (
        tmp_path / "keys" / "govfn.example_pods.key",
        tmp_path / "keys" / "govfn.example_pods.pub",
    )


def sign_all(key: Path) -> dict[int, str]:
    result = run("chronicle", "checkpoint", "--key", str(key))
    assert result.exit_code == 0, result.output
    return {entry["log"]: entry["note"] for entry in json.loads(result.output)["logs"]}


def sign_one(key: Path, log_id: int, out: Path) -> str:
    result = run("chronicle", "checkpoint", "--key", str(key), "--log", str(log_id))
    assert result.exit_code == 0, result.output
    out.write_text(result.output, encoding="utf-8")
    return result.output


def verify(pub: Path, *notes: Path) -> Result:
    args = [arg for note in notes for arg in ("--checkpoint", str(note))]
    return run("chronicle", "verify", *args, "--verifier", str(pub))


def test_each_log_is_signed_under_its_own_origin_and_verifies_independently(
    two_logs: str, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    vkey = pub.read_text().strip()
    notes = sign_all(key)
    assert sorted(notes) == [1, 2]
    with PostgresLedger(two_logs) as ledger:
        for log_id, note in notes.items():
            origin, size, root64 = spec_note.verify_note(note.encode(), vkey).splitlines()
            leaves = leaves_of(ledger, log_id)
            assert (origin, int(size)) == (f"{NAME}/{log_id}", len(leaves))
            assert base64.b64decode(root64) == merkle.root(leaves)
            assert ledger.log(log_id).signed_checkpoints() == [note]  # stored beside its log
        files = {}
        for log_id, note in notes.items():
            files[log_id] = tmp_path / f"log{log_id}.note"
            files[log_id].write_text(note)
        ledger.append(make(4, "later"))  # a third log
    result = verify(pub, files[1], files[2])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 12 records in 3 logs")
    assert "log 1: the log of 5 records extends the signed checkpoint(s) at 5" in result.output
    assert f"log 3: no checkpoint signed by {NAME}" in result.output
    stored = run("chronicle", "verify", "--verifier", vkey)
    assert stored.exit_code == 0 and "log 2: the log of 3 records" in stored.output

    one = sign_one(key, 3, tmp_path / "log3.note")
    assert spec_note.verify_note(one.encode(), vkey).startswith(f"{NAME}/3\n4\n")
    by_origin = run("chronicle", "verify", "--checkpoint", str(files[1]), "--verifier", vkey)
    assert by_origin.exit_code == 0 and "log 1: the log of 5 records" in by_origin.output
    mismatch = run(
        "chronicle", "verify", "--log", "2", "--checkpoint", str(files[1]), "--verifier", vkey
    )
    assert mismatch.exit_code == 1 and "checkpoint 1 is for log 1, not log 2" in mismatch.output
    proof = json.loads(run("chronicle", "consistency", "--log", "1", "2").output)
    with PostgresLedger(two_logs) as ledger:
        leaves = leaves_of(ledger, 1)
    assert (proof["log"], proof["old_size"], proof["new_size"]) == (1, 2, 5)
    assert merkle.verify_consistency(
        2,
        5,
        merkle.root(leaves[:2]),
        bytes.fromhex(proof["new_root"]),
        [bytes.fromhex(node) for node in proof["proof"]],
    )
    ambiguous = run("chronicle", "consistency", "2")
    assert ambiguous.exit_code == 2 and "name one with --log" in ambiguous.output


def test_a_flipped_byte_fails_naming_the_log_and_record(
    two_logs: str, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    sign_one(key, 1, tmp_path / "one.note")
    with superuser(two_logs) as conn:
        (body,) = conn.execute(
            "SELECT body FROM chronicle.records WHERE log_id = 1 AND seq = 3"
        ).fetchone() or (b"",)
        flipped = bytes(body).replace(b'"n":2', b'"n":3')
        conn.execute(
            "UPDATE chronicle.records SET body = %s WHERE log_id = 1 AND seq = 3", (flipped,)
        )
    result = verify(pub, tmp_path / "one.note")
    assert result.exit_code == 1
    assert re.search(
        r"FAILED at record 3 \(b\w+\): log 1: content does not match its CID", result.output
    )


def test_a_dropped_record_fails_naming_it(
    two_logs: str, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    sign_one(key, 1, tmp_path / "one.note")
    with superuser(two_logs) as conn:
        conn.execute("DELETE FROM chronicle.records WHERE log_id = 1 AND seq = 4")
    result = verify(pub, tmp_path / "one.note")
    assert result.exit_code == 1 and "FAILED at record 5" in result.output
    assert "log 1: record 4 is missing" in result.output


def test_a_rewritten_and_resigned_log_fails_naming_the_first_size_that_differs(
    two_logs: str, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    three, five = tmp_path / "three.note", tmp_path / "five.note"
    with PostgresLedger(two_logs) as ledger:
        originals = [r for r in ledger.records() if r.payload["tag"] == "one"]
        # a witness took a checkpoint of log 1 at 3 records (the CLI signs current heads)
        signer = Signer.from_key(key.read_text())
        root3 = ledger.log(1).root_at(3)
        three.write_text(Checkpoint(f"{NAME}/1", 3, root3).sign(signer))
    sign_one(key, 1, five)
    assert verify(pub, three, five).exit_code == 0

    # A superuser rewrites record 4 of log 1 and everything after it (CIDs, chain, stored
    # hashes), then signs a checkpoint of the new history.
    altered = Record.build("TEST", {"tag": "one", "n": 3, "amount": "forged"})
    forged = [*originals[:3], altered, originals[4]]
    builder, chain = tree.TreeBuilder(), GENESIS
    with superuser(two_logs) as conn:
        conn.execute("DELETE FROM chronicle.records WHERE log_id = 1")
        conn.execute("ALTER TABLE chronicle.checkpoints DISABLE TRIGGER USER")
        conn.execute("DELETE FROM chronicle.checkpoints WHERE log_id = 1")
        for seq, record in enumerate(forged, start=1):
            leaf = merkle.leaf_hash(record.canonical)
            chain = chain_next(chain, leaf)
            conn.execute(
                "INSERT INTO chronicle.records (log_id, seq, cid, type, body, chain, tree) "
                "VALUES (1, %s, %s, %s, %s, %s, %s)",
                (
                    seq,
                    record.cid,
                    record.type,
                    record.canonical,
                    chain,
                    builder.append_packed(leaf),
                ),
            )
    assert run("chronicle", "verify").exit_code == 0  # consistent in itself
    forged_note = sign_one(key, 1, tmp_path / "forged.note")
    assert verify(pub, tmp_path / "forged.note").exit_code == 0

    result = verify(pub, three, five)
    assert result.exit_code == 1
    assert "log 1: tree size 5 no longer matches the signed checkpoint" in result.output
    assert "it still matches tree size 3" in result.output
    assert "history was rewritten" in result.output
    assert forged_note != five.read_text()
    stored = run("chronicle", "verify", "--verifier", str(pub))  # the notes beside the log
    assert stored.exit_code == 1 and "log 1: tree size 5 no longer matches" in stored.output


def test_an_older_head_is_never_stored_after_a_newer_one(postgres_uri: str) -> None:
    signer = Signer.generate(NAME)
    with PostgresLedger(postgres_uri) as ledger:
        ledger.append(make(3))
        log = ledger.own_logs()[0]
        at_three = Checkpoint(f"{NAME}/1", 3, log.root_at(3))
        ledger.append(make(2, "more"))
        at_five = Checkpoint(f"{NAME}/1", 5, log.root_at(5))
        assert log.store_signed_checkpoint(5, at_five.root, at_five.sign(signer))
        assert not log.store_signed_checkpoint(5, at_five.root, at_five.sign(signer))
        assert not log.store_signed_checkpoint(3, at_three.root, at_three.sign(signer))
        assert log.signed_checkpoints() == [at_five.sign(signer)]


def test_the_publisher_signs_the_logs_it_writes_and_sends_them_after_their_records(
    postgres_uri: str, sink: SinkDouble
) -> None:
    signer = Signer.generate(NAME)
    vkey = signer.verifier().encode()
    other = PostgresLedger(postgres_uri)
    other.append(make(2, "another pod"))  # log 1: not this publisher's
    other.close()
    ledger = PostgresLedger(postgres_uri, outbox=True)
    sender = SinkSender(Path("unused"), sink.url, outbox=PostgresOutbox(postgres_uri))
    publisher = CheckpointPublisher(
        ledger, signer, NAME, interval_s=3600, on_published=sender.notify
    )
    try:
        ledger.append(make(3, "sync"))
        asyncio.run(ledger.append_async(make(4, "lane 0")))
        publisher.publish_once()
        assert publisher.publish_once() is None  # nothing new
        sizes = {}
        for log in ledger.own_logs():
            (note,) = log.signed_checkpoints()
            origin, size, _ = spec_note.verify_note(note.encode(), vkey).splitlines()
            sizes[origin] = int(size)
        assert sizes == {f"{NAME}/2": 3, f"{NAME}/3": 4}
        assert ledger.log(1).signed_checkpoints() == []
        ledger.append(make(1, "sync again"))
        publisher.stop()  # the final heads
        assert len(ledger.log(2).signed_checkpoints()) == 2
        sender.start()
        assert sender.stop(drain_timeout_s=30) == 0
    finally:
        ledger.close()
    kinds = [event["ce-type"] for event in sink.received]
    assert kinds == ["TEST"] * 8 + ["CHRONICLE_CHECKPOINT"] * 3
    notes = [event for event in sink.received if event["ce-type"] == "CHRONICLE_CHECKPOINT"]
    assert all(event["ce-id"] == cid_of_bytes(event["body"].encode()) for event in notes)
    assert [spec_note.verify_note(e["body"].encode(), vkey).split("\n")[1] for e in notes] == [
        "3",
        "4",
        "4",
    ]


# -- a serving pod ----------------------------------------------------------------------


def signed_heads(sink: SinkDouble, vkey: str) -> dict[str, int]:
    """The largest tree size each origin's checkpoints sent to the sink sign."""
    heads: dict[str, int] = {}
    for event in sink.received:
        if event["ce-type"] == "CHRONICLE_CHECKPOINT":
            origin, size = spec_note.verify_note(event["body"].encode(), vkey).split("\n")[:2]
            heads[origin] = max(heads.get(origin, 0), int(size))
    return heads


@pytest.mark.slow
@pytest.mark.parametrize("interval", ["0.2", "3600"])
def test_a_serving_pod_on_postgres_signs_each_log_on_schedule_and_at_sigterm(
    postgres_uri: str, sink: SinkDouble, tmp_path: Path, interval: str
) -> None:
    signer = Signer.generate(NAME)
    key = tmp_path / "pods.key"
    key.write_text(signer.encode() + "\n")
    vkey = signer.verifier().encode()
    env = {
        "GOVFN_CHRONICLE": postgres_uri,
        "GOVFN_CHRONICLE_SPOOL": str(tmp_path / "spool"),
        "K_SINK": sink.url,
        "GOVFN_CHRONICLE_SIGNING_KEY": str(key),
        "GOVFN_CHRONICLE_CHECKPOINT_INTERVAL_S": interval,
    }
    server = start_server(tmp_path, "--workers", "2", env=env)
    try:
        post_echo_events(server.url, 6, "pg-cp")
        if interval == "0.2":  # on schedule, while serving: every record is under a note
            assert wait_for(lambda: sum(signed_heads(sink, vkey).values()) == 12, 30.0), (
                server.log_text()
            )
        else:
            kinds = lambda: [e["ce-type"] for e in sink.received]  # noqa: E731
            assert wait_for(
                lambda: len([k for k in kinds() if k != "CHRONICLE_CHECKPOINT"]) == 12, 30.0
            )
            assert signed_heads(sink, vkey) == {}
    finally:
        stop_server(server)  # SIGTERM
    assert server.process.returncode == 0, server.log_text()
    with PostgresLedger(postgres_uri) as ledger:
        assert ledger.verify().ok
        heads = {head.log: head for head in ledger.tree_heads()}
        notes = {log_id: ledger.log(log_id).signed_checkpoints() for log_id in heads}
    assert sum(head.tree_size for head in heads.values()) == 12
    sent = signed_heads(sink, vkey)  # sent before the workers exited
    assert sent == {f"{NAME}/{log_id}": head.tree_size for log_id, head in heads.items()}
    for log_id, head in heads.items():
        last = spec_note.verify_note(notes[log_id][-1].encode(), vkey).split("\n")
        root64 = base64.b64encode(bytes.fromhex(head.root)).decode()
        assert last[:3] == [f"{NAME}/{log_id}", str(head.tree_size), root64]
        sizes = [int(spec_note.verify_note(n.encode(), vkey).split("\n")[1]) for n in notes[log_id]]
        assert sizes == sorted(set(sizes))  # one note per head, never an older one after
