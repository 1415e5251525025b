"""The customer's check of a tlog-proof in docs/chronicle.md (Python and `cryptography`, no
govfn) runs as printed, in an isolated interpreter, on a proof `govfn chronicle proof
--format tlog-proof` wrote: it accepts the record's proof and refuses another CID, a
missing quorum, another log key and a tampered file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from govfn.chronicle import Ledger, Record
from govfn.chronicle.signing.note import Signer
from govfn.chronicle.signing.witness import sign_checkpoint
from govfn.chronicle.signing.witnesses import with_cosignatures
from govfn.cli.group import cli

from support.spec_witness import SpecWitness

README = Path(__file__).resolve().parents[2] / "docs" / "chronicle.md"
ORIGIN = "billing.example.com/chronicle"


def readme_script() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("  ```python\n  # check_tlog_proof.py")
    body = text[start + len("  ```python\n") :]
    return textwrap.dedent(body[: body.index("  ```\n")])


@pytest.fixture
def proof(tmp_path: Path) -> tuple[Path, Record, Signer, list[SpecWitness]]:
    signer = Signer.generate(ORIGIN)
    spec = [SpecWitness(f"w{i}.example", {}) for i in (1, 2)]
    records = [Record.build("BILLABLE", {"line": i, "cents": 125 * i}) for i in range(300)]
    with Ledger(tmp_path / "chronicle.db") as ledger:
        ledger.append(records)
        checkpoint, note = sign_checkpoint(ledger, signer, ORIGIN)
        text = note.split("\n\n")[0].encode() + b"\n"
        cosigned = with_cosignatures(note, [w.cosignature(text, 1_765_000_000) for w in spec])
        ledger.store_signed_checkpoint(300, checkpoint.root, cosigned)
    args = ["chronicle", "proof", "--ledger", str(tmp_path / "chronicle.db"), records[257].cid]
    result = CliRunner().invoke(cli, [*args, "--format", "tlog-proof"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "record.tlog-proof"
    path.write_text(result.output, encoding="utf-8")
    return path, records[257], signer, spec


def check(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(script), *args], capture_output=True, text=True, timeout=60
    )


def test_the_readme_check_accepts_the_proof_and_refuses_what_it_must(
    proof: tuple[Path, Record, Signer, list[SpecWitness]], tmp_path: Path
) -> None:
    path, record, signer, spec = proof
    source = readme_script()
    assert "govfn" not in source.split("\n", 2)[2]  # imports nothing of govfn
    script = tmp_path / "check_tlog_proof.py"
    script.write_text(source, encoding="utf-8")
    log_key, witness_keys = signer.verifier().encode(), [w.vkey for w in spec]
    ok = check(script, str(path), record.cid, log_key, "2", *witness_keys)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == f"ok: {record.cid} is entry 257 of {ORIGIN} (300 records)\n"
    other = Record.build("BILLABLE", {"line": 1, "cents": 126}).cid
    assert "another record" in check(script, str(path), other, log_key, "1").stderr
    third = SpecWitness("w3.example", {}).vkey
    short = check(script, str(path), record.cid, log_key, "3", *witness_keys, third)
    assert "2 witness cosignatures, 3 needed" in short.stderr
    stranger = Signer.generate(ORIGIN).verifier().encode()
    assert "not signed by the log" in check(script, str(path), record.cid, stranger, "0").stderr
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[3] = lines[4]  # one hash of the audit path replaced by the next
    path.write_text("\n".join(lines), encoding="utf-8")
    bad = check(script, str(path), record.cid, log_key, "2", *witness_keys)
    assert bad.returncode != 0 and "not in the signed tree" in bad.stderr
