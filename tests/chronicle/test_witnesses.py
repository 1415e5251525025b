"""Witnesses (C2SP tlog-witness, tlog-cosignature) against `support.spec_witness`, a
witness written from the specs that checks each consistency proof and cosigns with
Ed25519 cosignature/v1: checkpoints cosigned and stored with the note, 409 answered by
proving from the witness's size, bad lines dropped, a down or slow witness delaying
nothing and retried, keys in both forms, `verify --witness --quorum`, and a real
`govfn serve` with GOVFN_CHRONICLE_WITNESSES."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from govfn.chronicle import Ledger, Record
from govfn.chronicle.signing.cosigning import Cosigning
from govfn.chronicle.signing.note import NoteError, Signer
from govfn.chronicle.signing.publisher import CheckpointPublisher
from govfn.chronicle.signing.witnesses import Cosigner, Witness, parse_witnesses
from govfn.chronicle.tiles import published
from govfn.cli.group import cli
from govfn.settings import Settings

from support.http_server import free_port, post_echo_events, start_server, stop_server
from support.spec_note import verify_note
from support.spec_proof import witnesses_cosigning
from support.spec_witness import SpecWitness

ORIGIN = "govfn.example/witnessed"


def make(n: int, start: int = 0) -> list[Record]:
    return [Record.build("TEST", {"n": i}) for i in range(start, n)]


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / 0.02) + 1):
        if condition():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def witnesses(signer: Signer) -> Iterator[list[SpecWitness]]:
    started = [
        SpecWitness(f"witness{i}.example", {ORIGIN: signer.verifier().encode()}).start()
        for i in (1, 2)
    ]
    yield started
    for witness in started:
        witness.stop()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "chronicle.db") as opened:
        yield opened


def configured(*spec: SpecWitness) -> list[Witness]:
    return parse_witnesses(",".join(f"{w.vkey} {w.url}" for w in spec))


def latest_note(ledger: Ledger) -> str:
    found = published(ledger)
    assert found is not None
    return found.note


def cosigners_of(ledger: Ledger, spec: list[SpecWitness], signer: Signer) -> list[str]:
    note = latest_note(ledger).encode()
    text = verify_note(note, signer.verifier().encode()).encode()
    return witnesses_cosigning(note, text, [w.vkey for w in spec])


def publisher(ledger: Ledger, signer: Signer, cosigning: Cosigning) -> CheckpointPublisher:
    return CheckpointPublisher(ledger, signer, ORIGIN, on_signed=cosigning.submit)


def test_witness_keys_in_both_forms_name_the_same_cosigner(witnesses: list[SpecWitness]) -> None:
    one = witnesses[0]
    assert Cosigner.from_key(one.vkey) == Cosigner.from_key(one.note_vkey)
    assert Cosigner.from_key(one.note_vkey).encode() == one.vkey
    wrong_id = one.vkey.split("+")
    wrong_id[1] = "00000000"
    with pytest.raises(NoteError, match="key ID does not match"):
        Cosigner.from_key("+".join(wrong_id))
    with pytest.raises(ValueError, match=r"GOVFN_CHRONICLE_WITNESSES: .* is not '<verifier key>"):
        parse_witnesses(one.vkey)
    two = witnesses[1]
    env = {"GOVFN_CHRONICLE_WITNESSES": f"{one.note_vkey} {one.url}/, {two.vkey} {two.url}"}
    settings = Settings.from_env(env)
    assert [w.url for w in settings.witnesses] == [one.url, witnesses[1].url]
    with pytest.raises(ValueError, match="named twice"):
        Settings.from_env(
            {"GOVFN_CHRONICLE_WITNESSES": f"{one.vkey} {one.url},{one.vkey} {one.url}"}
        )


def test_each_checkpoint_is_cosigned_after_a_consistency_proof_and_stored_with_the_note(
    ledger: Ledger, signer: Signer, witnesses: list[SpecWitness]
) -> None:
    cosigning = Cosigning(configured(*witnesses))
    signing = publisher(ledger, signer, cosigning)
    try:
        ledger.append(make(10))
        signing.publish_once()
        wait_for(lambda: len(cosigners_of(ledger, witnesses, signer)) == 2)
        ledger.append(make(300, 10))
        signing.publish_once()
        wait_for(lambda: published(ledger).size == 300)  # type: ignore[union-attr]
        wait_for(lambda: len(cosigners_of(ledger, witnesses, signer)) == 2)
    finally:
        cosigning.stop()
    for witness in witnesses:
        assert witness.latest[ORIGIN][0] == 300  # it checked the proof from 10 to 300
        assert witness.answers == [200, 200]
    note = latest_note(ledger)
    assert note.startswith(f"{ORIGIN}\n300\n") and note.endswith("\n") and not note.endswith("\n\n")
    assert note.count("\u2014 ") == 3  # the log's signature and two cosignatures


def test_a_409_is_answered_by_proving_from_the_witness_size(
    ledger: Ledger, signer: Signer, witnesses: list[SpecWitness]
) -> None:
    witness = witnesses[0]
    earlier = Cosigning(configured(witness))  # a pod that has since gone
    ledger.append(make(7))
    publisher(ledger, signer, earlier).publish_once()
    wait_for(lambda: witness.latest.get(ORIGIN, (0,))[0] == 7)
    earlier.stop()
    later = Cosigning(configured(witness))  # knows nothing of size 7: starts from old 0
    ledger.append(make(40, 7))
    publisher(ledger, signer, later).publish_once()
    wait_for(lambda: witness.latest[ORIGIN][0] == 40)
    later.stop()
    assert witness.answers == [200, 409, 200]
    assert cosigners_of(ledger, [witness], signer) == [witness.name]


def test_lines_that_do_not_verify_are_dropped(
    ledger: Ledger, signer: Signer, witnesses: list[SpecWitness]
) -> None:
    good, other = witnesses
    impostor = SpecWitness(good.name, {})  # the witness's name, another key
    blob = bytearray(base64.b64decode(impostor.cosignature(b"anything\n", 1).split(" ")[2]))
    blob[:4] = bytes.fromhex(good.vkey.split("+")[1])  # claims the witness's key ID
    good.extra_lines = (
        f"\u2014 {good.name} {base64.b64encode(bytes(blob)).decode()}\n"  # bad signature
        + other.cosignature(b"x\n", 5)  # a witness not asked, on another text
        + "not a signature line\n"
    )
    cosigning = Cosigning(configured(good))
    ledger.append(make(5))
    publisher(ledger, signer, cosigning).publish_once()
    wait_for(lambda: cosigning.cosigned == 1)
    cosigning.stop()
    note = latest_note(ledger)
    assert note.count("\u2014 ") == 2  # the log's and the one good cosignature
    assert cosigners_of(ledger, witnesses, signer) == [good.name]


def test_a_down_or_slow_witness_delays_nothing_and_is_retried(
    ledger: Ledger, signer: Signer, witnesses: list[SpecWitness]
) -> None:
    up, down = witnesses
    down.refusing = True
    slow = SpecWitness("slow.example", {ORIGIN: signer.verifier().encode()}, delay_s=2).start()
    gone = SpecWitness("gone.example", {})  # never started: nothing listens on its port
    (unreachable,) = parse_witnesses(f"{gone.vkey} http://127.0.0.1:{free_port()}")
    cosigning = Cosigning([*configured(up, down, slow), unreachable], first_retry_s=0.05)
    signing = publisher(ledger, signer, cosigning)
    try:
        ledger.append(make(20))
        started = time.monotonic()
        signing.publish_once()
        assert time.monotonic() - started < 0.5  # signing does not wait for witnesses
        wait_for(lambda: cosigners_of(ledger, witnesses, signer) == [up.name], 2.0)
        appended = time.monotonic()
        ledger.append(make(25, 20))  # while the slow witness holds its request
        assert time.monotonic() - appended < 0.5
        wait_for(lambda: down.answers.count(503) >= 3)  # retried, backing off
        down.refusing = False
        wait_for(lambda: len(cosigners_of(ledger, [up, down, slow], signer)) == 3)
    finally:
        cosigning.stop()
        slow.stop()
    assert cosigning.failures >= 3 + 3  # the refusing witness's, and the unreachable one's


def test_verify_checks_the_witness_quorum(
    ledger: Ledger, signer: Signer, witnesses: list[SpecWitness], tmp_path: Path
) -> None:
    cosigning = Cosigning(configured(*witnesses))
    ledger.append(make(12))
    publisher(ledger, signer, cosigning).publish_once()
    wait_for(lambda: len(cosigners_of(ledger, witnesses, signer)) == 2)
    cosigning.stop()
    absent = SpecWitness("absent.example", {})
    note = tmp_path / "checkpoint"
    note.write_text(latest_note(ledger), encoding="utf-8")
    base = [
        "chronicle",
        "verify",
        "--ledger",
        str(ledger.path),
        "--verifier",
        signer.verifier().encode(),
    ]
    keys = ["--witness", witnesses[0].vkey, "--witness", witnesses[1].note_vkey]
    ok = CliRunner().invoke(cli, [*base, "--checkpoint", str(note), *keys])
    assert ok.exit_code == 0, ok.output
    assert "cosigned by at least 2 of 2 witnesses" in ok.output
    stored = CliRunner().invoke(cli, [*base, *keys, "--witness", absent.vkey, "--quorum", "2"])
    assert stored.exit_code == 0, stored.output
    short = CliRunner().invoke(cli, [*base, *keys, "--witness", absent.vkey])
    assert short.exit_code == 1
    assert "2 valid cosignature(s) of the 3 witnesses given" in short.output
    assert "3 needed" in short.output


def test_a_serving_pod_gets_its_checkpoints_cosigned(
    tmp_path: Path, witnesses: list[SpecWitness]
) -> None:
    result = CliRunner().invoke(
        cli, ["chronicle", "keygen", ORIGIN, "--out", str(tmp_path / "keys")]
    )
    assert result.exit_code == 0, result.output
    key = tmp_path / "keys" / "govfn.example_witnessed.key"
    vkey = (tmp_path / "keys" / "govfn.example_witnessed.pub").read_text().strip()
    for witness in witnesses:
        witness.logs = {ORIGIN: vkey}
    env = {
        "GOVFN_CHRONICLE_SIGNING_KEY": str(key),
        "GOVFN_CHRONICLE_CHECKPOINT_INTERVAL_S": "0.2",
        "GOVFN_CHRONICLE_WITNESSES": ",".join(f"{w.vkey} {w.url}" for w in witnesses),
    }
    server = start_server(tmp_path, "--functions", "govfn.functions", "--dev", env=env)
    try:
        post_echo_events(server.url, 3, "w")

        def cosigned() -> bool:
            try:
                with urllib.request.urlopen(
                    server.url + "/chronicle/logs/default/checkpoint"
                ) as answer:
                    note = answer.read()
            except urllib.error.HTTPError as exc:
                assert exc.code == 404  # no checkpoint signed yet
                return False
            text = verify_note(note, vkey).encode()
            return (
                int(text.split(b"\n")[1]) >= 6
                and len(witnesses_cosigning(note, text, [w.vkey for w in witnesses])) == 2
            )

        wait_for(cosigned, 15.0)
        with urllib.request.urlopen(server.url + "/chronicle/logs") as answer:
            assert json.loads(answer.read())[0]["origin"] == ORIGIN
    finally:
        stop_server(server)
