"""Offline proofs: `govfn chronicle proof CID --format tlog-proof` and
`GET /chronicle/proofs/<cid>` give a c2sp.org/tlog-proof@v1 file that
`support.spec_proof` (written from the spec, no govfn) verifies with the record's bytes,
the log's key and the witnesses' keys; it ends at the note's last signature line."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from govfn.app import create_app
from govfn.chronicle import Ledger, Record
from govfn.chronicle.proofs import TlogProof
from govfn.chronicle.signing.note import Signer
from govfn.chronicle.signing.witness import sign_checkpoint
from govfn.chronicle.signing.witnesses import parse_witnesses, with_cosignatures
from govfn.cli.group import cli
from govfn.settings import Settings

from support.ledgers import BOTH_BACKENDS, AnyLedger, location
from support.spec_proof import verify_tlog_proof
from support.spec_witness import SpecWitness

ORIGIN = "govfn.example/proofs"


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def records() -> list[Record]:
    return [Record.build("BILLABLE", {"invoice_line": i, "amount": 3 * i}) for i in range(37)]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture
def witnessed(
    tmp_path: Path, signer: Signer, records: list[Record]
) -> Iterator[tuple[Ledger, list[SpecWitness]]]:
    """A ledger whose checkpoint at 30 records two witnesses cosigned (7 more after it)."""
    spec = [SpecWitness(f"w{i}.example", {ORIGIN: signer.verifier().encode()}) for i in (1, 2)]
    with Ledger(tmp_path / "chronicle.db") as ledger:
        ledger.append(records[:30])
        checkpoint, note = sign_checkpoint(ledger, signer, ORIGIN)
        text = note.split("\n\n")[0].encode() + b"\n"
        lines = [w.cosignature(text, 1_700_000_000) for w in spec]
        ledger.store_signed_checkpoint(30, checkpoint.root, with_cosignatures(note, lines))
        ledger.append(records[30:])
        yield ledger, spec


def test_a_customer_checks_a_record_offline(
    witnessed: tuple[Ledger, list[SpecWitness]], signer: Signer, records: list[Record]
) -> None:
    ledger, spec = witnessed
    code, text = run(
        "chronicle",
        "proof",
        "--ledger",
        str(ledger.path),
        records[11].cid,
        "--format",
        "tlog-proof",
    )
    assert code == 0, text
    extra = base64.b64encode(records[11].canonical).decode()  # the entry itself
    assert text.startswith(f"c2sp.org/tlog-proof@v1\nextra {extra}\nindex 11\n")
    assert text.endswith("=\n") and not text.endswith("\n\n")  # the last signature line
    proof = text.encode()
    index = verify_tlog_proof(
        proof, records[11].canonical, signer.verifier().encode(), [w.vkey for w in spec], 2
    )
    assert index == 11
    with pytest.raises(AssertionError, match="bad proof"):  # another record's bytes
        verify_tlog_proof(proof, records[12].canonical, signer.verifier().encode(), [], 0)
    flipped = bytearray(proof)
    flipped[len(f"c2sp.org/tlog-proof@v1\nextra {extra}\nindex 11\n") + 3] ^= 1
    with pytest.raises((AssertionError, ValueError)):
        verify_tlog_proof(bytes(flipped), records[11].canonical, signer.verifier().encode(), [], 0)
    other = SpecWitness("w3.example", {})
    with pytest.raises(AssertionError, match="2 witness cosignatures, 3 needed"):
        keys = [w.vkey for w in [*spec, other]]
        verify_tlog_proof(proof, records[11].canonical, signer.verifier().encode(), keys, 3)
    parsed = TlogProof.parse(text)
    assert parsed.extra == records[11].canonical
    assert parsed.leaf_index == 11 and parsed.includes(
        records[11].canonical, 30, base64.b64decode(parsed.note.split("\n")[2])
    )
    assert parse_witnesses(",".join(f"{w.vkey} http://127.0.0.1:1" for w in spec))


def test_the_management_api_serves_the_same_file(
    witnessed: tuple[Ledger, list[SpecWitness]], records: list[Record]
) -> None:
    ledger, _ = witnessed
    code, text = run(
        "chronicle", "proof", "--ledger", str(ledger.path), records[0].cid, "--format", "tlog-proof"
    )
    assert code == 0
    env = {
        "GOVFN_CHRONICLE": str(ledger.path),
        "GOVFN_FUNCTIONS": "govfn.functions",
        "GOVFN_DEV": "1",
    }
    app = create_app(settings=Settings.from_env(env))
    try:
        client = app.test_client()
        answer = client.get(f"/chronicle/proofs/{records[0].cid}")
        assert answer.status_code == 200 and answer.data.decode() == text
        assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
        late = client.get(f"/chronicle/proofs/{records[33].cid}")
        assert (
            late.status_code == 404
            and "after the latest signed checkpoint" in late.get_json()["detail"]
        )
        assert client.get("/chronicle/proofs/bafkunknown").status_code == 404
    finally:
        app.loop.stop()


def test_a_record_past_the_latest_checkpoint_or_unknown_is_refused(
    witnessed: tuple[Ledger, list[SpecWitness]], records: list[Record]
) -> None:
    ledger, _ = witnessed
    code, text = run(
        "chronicle",
        "proof",
        "--ledger",
        str(ledger.path),
        records[33].cid,
        "--format",
        "tlog-proof",
    )
    assert code == 1 and "leaf 33, after the latest signed checkpoint (tree size 30)" in text
    code, text = run(
        "chronicle", "proof", "--ledger", str(ledger.path), "bafkunknown", "--format", "tlog-proof"
    )
    assert code == 1 and "no record bafkunknown" in text
    code, text = run("chronicle", "proof", "--ledger", str(ledger.path), records[3].cid)
    assert code == 0 and '"audit_path"' in text  # the JSON proof as before


@BOTH_BACKENDS
def test_proofs_on_both_backends(ledger: AnyLedger, signer: Signer, records: list[Record]) -> None:
    ledger.append(records)
    args = ["chronicle", "proof", "--ledger", location(ledger), records[5].cid]
    code, text = run(*args, "--format", "tlog-proof")
    assert code == 1 and "no signed checkpoint" in text
    ((name, log),) = ledger.audited_logs()
    sign_checkpoint(log, signer, ORIGIN if name is None else f"{ORIGIN}/{name}")  # type: ignore[arg-type]
    code, text = run(*args, "--format", "tlog-proof")
    assert code == 0, text
    assert (
        verify_tlog_proof(text.encode(), records[5].canonical, signer.verifier().encode(), [], 0)
        == 5
    )
