"""Signed checkpoints end to end through `govfn chronicle` on real ledger files: keygen,
checkpoint --key, verify --checkpoint --verifier (a flipped byte, a dropped record, a
truncated log, and a rewritten, re-signed log each fail, saying what is wrong),
consistency and proof output, and ledgers written before the stored hashes existed."""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from govfn.chronicle import Ledger, Record, merkle
from govfn.cli.group import cli

from support import spec_note

HEX = re.compile(r"[0-9a-f]{64}")
NAME = "govfn.example/billing"


def make(n: int, tag: str = "r") -> list[Record]:
    return [Record.build("TEST", {"tag": tag, "n": i}) for i in range(n)]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "chronicle.db"
    monkeypatch.setenv("GOVFN_CHRONICLE", str(path))
    for name in ("GOVFN_CHRONICLE_SIGNING_KEY", "GOVFN_CHRONICLE_ORIGIN"):
        monkeypatch.delenv(name, raising=False)
    with Ledger(path) as ledger:
        ledger.append(make(5))
    yield path


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    result = run("chronicle", "keygen", NAME, "--out", str(tmp_path / "keys"))
    assert result.exit_code == 0, result.output
    return (
        tmp_path / "keys" / "govfn.example_billing.key",
        tmp_path / "keys" / "govfn.example_billing.pub",
    )


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def sign(key: Path, out: Path, ledger: Path | None = None) -> str:
    where = ["--ledger", str(ledger)] if ledger else []
    result = run("chronicle", "checkpoint", "--key", str(key), *where)
    assert result.exit_code == 0, result.output
    out.write_text(result.output, encoding="utf-8")
    return result.output


def verify(pub: Path, *notes: Path) -> Result:
    args = [arg for note in notes for arg in ("--checkpoint", str(note))]
    return run("chronicle", "verify", *args, "--verifier", str(pub))


def raw(path: Path) -> sqlite3.Connection:
    """A tamperer's connection, the append-only triggers dropped."""
    conn = sqlite3.connect(path, isolation_level=None)
    for trigger in ("records", "merkle_nodes"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}_no_update")
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}_no_delete")
    return conn


def test_keygen_writes_the_go_key_forms(keys: tuple[Path, Path], tmp_path: Path) -> None:
    key, pub = keys
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    skey, vkey = key.read_text().strip(), pub.read_text().strip()
    name, key_id, _ = spec_note.parse_vkey(vkey)
    assert name == NAME and skey.startswith(f"PRIVATE+KEY+{NAME}+{key_id:08x}+")
    seed = base64.b64decode(skey.split("+", 4)[4])
    assert seed[0] == 1 and len(seed) == 33
    again = run("chronicle", "keygen", NAME, "--out", str(tmp_path / "keys"))
    assert again.exit_code == 2 and "not overwriting" in again.output
    bad = run("chronicle", "keygen", "has space", "--out", str(tmp_path / "other"))
    assert bad.exit_code == 2 and "space" in bad.output


def test_signed_checkpoint_verifies_independently_and_later_logs_extend_it(
    db: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    note = sign(key, tmp_path / "five.note")
    text = spec_note.verify_note(note.encode(), pub.read_text().strip())
    origin, size, root64 = text.splitlines()
    with Ledger(db) as ledger:
        leaves = [merkle.leaf_hash(r.canonical) for r in ledger.records()]
        assert (origin, size) == (NAME, "5")
        assert base64.b64decode(root64) == merkle.root(leaves)
        assert ledger.signed_checkpoints() == [note]  # stored beside the log
        ledger.append(make(3, "later"))
    result = verify(pub, tmp_path / "five.note")
    assert result.exit_code == 0, result.output
    assert (
        "ok: 8 records" in result.output
        and "extends the signed checkpoint(s) at 5" in result.output
    )
    stored = run("chronicle", "verify", "--verifier", pub.read_text().strip())
    assert stored.exit_code == 0 and "at 5" in stored.output
    assert run("chronicle", "keygen", "other.example/key", "--out", str(tmp_path)).exit_code == 0
    sign(tmp_path / "other.example_key.key", tmp_path / "other.note")  # stored as well
    assert run("chronicle", "verify", "--verifier", str(pub)).exit_code == 0  # not by pub
    other = run("chronicle", "verify", "--verifier", str(tmp_path / "other.example_key.pub"))
    assert other.exit_code == 0 and "at 8" in other.output


def test_origin_comes_from_the_option_or_the_environment(
    db: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = keys
    monkeypatch.setenv("GOVFN_CHRONICLE_SIGNING_KEY", str(key))
    monkeypatch.setenv("GOVFN_CHRONICLE_ORIGIN", "pods.example/one")
    assert run("chronicle", "checkpoint").output.startswith("pods.example/one\n5\n")
    named = run("chronicle", "checkpoint", "--origin", "pods.example/two")
    assert named.output.startswith("pods.example/two\n5\n")
    bad = run("chronicle", "checkpoint", "--origin", "two\nlines")
    assert bad.exit_code == 2 and "origin must be one non-empty line" in bad.output


def test_a_flipped_byte_fails_naming_the_record(
    db: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    sign(key, tmp_path / "five.note")
    with closing(raw(db)) as conn:
        (body,) = conn.execute("SELECT body FROM records WHERE seq = 3").fetchone()
        flipped = body.replace(b'"n":2', b'"n":3')
        conn.execute("UPDATE records SET body = ? WHERE seq = 3", (flipped,))
    result = verify(pub, tmp_path / "five.note")
    assert result.exit_code == 1
    assert re.search(r"FAILED at record 3 \(b\w+\): content does not match its CID", result.output)


def test_a_dropped_record_fails_naming_it(
    db: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    sign(key, tmp_path / "five.note")
    with closing(raw(db)) as conn:
        conn.execute("DELETE FROM records WHERE seq = 4")
    result = verify(pub, tmp_path / "five.note")
    assert result.exit_code == 1 and "FAILED at record 5" in result.output
    assert "record 4 is missing" in result.output


def test_a_truncated_log_fails_against_the_checkpoint(
    db: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    sign(key, tmp_path / "five.note")
    with closing(raw(db)) as conn:  # the tail and its hashes gone, the checkpoints table emptied
        conn.execute("DELETE FROM records WHERE seq > 3")
        conn.execute("DELETE FROM merkle_nodes WHERE seq > 3")
        conn.execute("DELETE FROM checkpoints")
    assert run("chronicle", "verify").exit_code == 0  # consistent in itself
    result = verify(pub, tmp_path / "five.note")
    assert result.exit_code == 1
    assert "tree size 5 no longer matches" in result.output
    assert "only 3 records (records were removed)" in result.output


def test_a_rewritten_and_resigned_log_fails_naming_the_first_size_that_differs(
    db: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    # Checkpoints at 2, 5 and 8 records, held by a witness. (The one at 2 is signed on a
    # copy of the log's first two records: the CLI signs the current head only.)
    two, at_two = tmp_path / "two.note", tmp_path / "at-two.db"
    with Ledger(at_two) as early, Ledger(db) as ledger:
        early.append(list(ledger.records())[:2])
    sign(key, two, ledger=at_two)
    sign(key, tmp_path / "five.note")
    with Ledger(db) as ledger:
        ledger.append(make(3, "later"))
        originals = list(ledger.records())
    sign(key, tmp_path / "eight.note")
    assert verify(pub, two, tmp_path / "five.note", tmp_path / "eight.note").exit_code == 0

    # Whoever can write the database rewrites record 4 and rebuilds everything after it
    # (CIDs, chain, stored hashes), then signs a checkpoint of the new history.
    altered = Record.build("TEST", {"tag": "r", "n": 3, "amount": "forged"})
    db.unlink()
    with Ledger(db) as forged:
        forged.append([*originals[:3], altered, *originals[4:]])
    forged_note = sign(key, tmp_path / "forged.note")
    assert run("chronicle", "verify").exit_code == 0  # the rewrite is consistent in itself
    assert verify(pub, tmp_path / "forged.note").exit_code == 0

    result = verify(pub, two, tmp_path / "five.note", tmp_path / "eight.note")
    assert result.exit_code == 1
    assert "tree size 5 no longer matches the signed checkpoint" in result.output
    assert "it still matches tree size 2" in result.output
    assert "history was rewritten" in result.output
    assert forged_note != (tmp_path / "eight.note").read_text()


def test_a_checkpoint_signed_by_another_key_is_refused(
    db: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    _, pub = keys
    assert run("chronicle", "keygen", NAME, "--out", str(tmp_path / "thief")).exit_code == 0
    sign(tmp_path / "thief" / "govfn.example_billing.key", tmp_path / "other.note")
    result = verify(pub, tmp_path / "other.note")
    assert result.exit_code == 1 and f"not signed by {NAME}" in result.output
    text = (tmp_path / "other.note").read_text()
    (tmp_path / "edited.note").write_text(text.replace("\n5\n", "\n4\n"))
    sign(keys[0], tmp_path / "mine.note")
    mine = (tmp_path / "mine.note").read_text()
    (tmp_path / "mine-edited.note").write_text(mine.replace("\n5\n", "\n4\n"))
    edited = verify(pub, tmp_path / "mine-edited.note")
    assert edited.exit_code == 1 and "does not verify" in edited.output


def test_verify_refuses_bad_input_with_exit_2(
    db: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    sign(key, tmp_path / "five.note")
    no_verifier = run("chronicle", "verify", "--checkpoint", str(tmp_path / "five.note"))
    assert no_verifier.exit_code == 2 and "needs --verifier" in no_verifier.output
    bad_key = run("chronicle", "verify", "--verifier", "nonsense")
    assert bad_key.exit_code == 2 and "verifier key" in bad_key.output
    missing = verify(pub, tmp_path / "absent.note")
    assert missing.exit_code == 2 and "cannot read" in missing.output
    (tmp_path / "junk.note").write_text("hello\n")
    junk = verify(pub, tmp_path / "junk.note")
    assert junk.exit_code == 2 and "not a signed note" in junk.output
    (tmp_path / "key.txt").write_text("PRIVATE+KEY+broken")
    bad_signer = run("chronicle", "checkpoint", "--key", str(tmp_path / "key.txt"))
    assert bad_signer.exit_code == 2 and "signer key" in bad_signer.output


def test_consistency_and_proof_print_lowercase_hex_any_verifier_reads(db: Path) -> None:
    with Ledger(db) as ledger:
        ledger.append(make(6, "more"))
        leaves = [merkle.leaf_hash(r.canonical) for r in ledger.records()]
        third = list(ledger.records())[2]
    printed = json.loads(run("chronicle", "consistency", "5", "11").output)
    assert set(printed) == {"old_size", "new_size", "old_root", "new_root", "proof"}
    assert all(
        HEX.fullmatch(h) for h in [printed["old_root"], printed["new_root"], *printed["proof"]]
    )
    assert (printed["old_size"], printed["new_size"]) == (5, 11)
    assert bytes.fromhex(printed["old_root"]) == merkle.root(leaves[:5])
    assert merkle.verify_consistency(
        5,
        11,
        merkle.root(leaves[:5]),
        merkle.root(leaves),
        [bytes.fromhex(h) for h in printed["proof"]],
    )
    assert json.loads(run("chronicle", "consistency", "5").output) == printed
    proof = json.loads(run("chronicle", "proof", third.cid).output)
    assert {"leaf_index", "tree_size", "leaf_hash", "audit_path", "root"} <= set(proof)
    assert all(HEX.fullmatch(h) for h in [proof["leaf_hash"], proof["root"], *proof["audit_path"]])
    assert merkle.verify_inclusion(
        2,
        11,
        merkle.leaf_hash(third.canonical),
        [bytes.fromhex(h) for h in proof["audit_path"]],
        merkle.root(leaves),
    )
    for args in (["12"], ["6", "5"], ["-1"], ["x"]):
        refused = run("chronicle", "consistency", *args)
        assert refused.exit_code == 2, (args, refused.output)


def test_a_ledger_written_before_stored_hashes_gets_them(db: Path) -> None:
    with closing(raw(db)) as conn:
        conn.execute("DROP TABLE merkle_nodes")
    with Ledger(db) as ledger:
        records = list(ledger.records())
        leaves = [merkle.leaf_hash(r.canonical) for r in records]
        assert ledger.head() == (5, merkle.root(leaves).hex())
        proof = ledger.inclusion_proof(3)
        assert proof.audit_path == [h.hex() for h in merkle.inclusion_proof(3, leaves)]
        ledger.append(make(2, "after"))
        assert ledger.verify().ok and ledger.head()[0] == 7


def test_a_tampered_stored_hash_is_found(db: Path) -> None:
    with closing(raw(db)) as conn:
        conn.execute("UPDATE merkle_nodes SET hashes = zeroblob(64) WHERE seq = 4")
    report = run("chronicle", "verify")
    assert report.exit_code == 1 and "FAILED at record 4" in report.output
    assert "its stored Merkle tree hashes do not match the records" in report.output


def test_a_third_party_rebuilds_the_signed_tree_from_the_export(
    db: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    import hashlib

    import rfc8785

    key, pub = keys
    with Ledger(db) as ledger:
        ledger.append([Record.build("TEST", {"amount": 1.5, "note": "caf\u00e9", "n": 10**3})])
    note = sign(key, tmp_path / "cp.note")
    _, size, root64 = spec_note.verify_note(note.encode(), pub.read_text().strip()).split("\n")[:3]
    exported = run("chronicle", "export").output.splitlines()
    leaves = [  # RFC 8785 by another implementation, RFC 6962 section 2.1 by hand
        hashlib.sha256(b"\x00" + rfc8785.dumps(json.loads(line)["payload"])).digest()
        for line in exported
    ]

    def mth(nodes: list[bytes]) -> bytes:
        if len(nodes) == 1:
            return nodes[0]
        k = 1 << ((len(nodes) - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + mth(nodes[:k]) + mth(nodes[k:])).digest()

    assert len(leaves) == int(size) == 6
    assert mth(leaves) == base64.b64decode(root64)
