"""Serving processes publish signed checkpoints: the publisher on a real ledger and sink
double, then a real `govfn serve` with a signing key, stopped by SIGTERM."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest

from govfn import assembly
from govfn.chronicle import Ledger, Record
from govfn.chronicle.cid import cid_of_bytes
from govfn.chronicle.signing.note import Signer
from govfn.chronicle.signing.publisher import CheckpointPublisher
from govfn.chronicle.sink import SinkSender
from govfn.settings import Settings

from support import spec_note
from support.http_server import post_echo_events, start_server, stop_server
from support.sink_double import SinkDouble
from support.waiting import wait_for


def checkpoint_events(sink: SinkDouble) -> list[dict[str, str]]:
    return [e for e in sink.received if e["ce-type"] == "CHRONICLE_CHECKPOINT"]


def test_publisher_signs_stores_and_sends_each_new_head(tmp_path: Path, sink: SinkDouble) -> None:
    signer = Signer.generate("govfn.example/pod")
    vkey = signer.verifier().encode()
    ledger = Ledger(tmp_path / "chronicle.db", outbox=True)
    ledger.append([Record.build("TEST", {"n": n}) for n in range(3)])
    sender = SinkSender(ledger.path, sink.url)
    publisher = CheckpointPublisher(
        ledger, signer, "govfn.example/pod", interval_s=3600, on_published=sender.notify
    )
    try:
        note = publisher.publish_once()
        assert note is not None and spec_note.verify_note(note.encode(), vkey).split("\n")[1] == "3"
        assert publisher.publish_once() is None  # nothing new: nothing signed
        assert ledger.signed_checkpoints() == [note]
        assert wait_for(lambda: len(checkpoint_events(sink)) == 1 and sender.depth() == 0)
        event = checkpoint_events(sink)[0]
        assert event["body"] == note and event["ce-id"] == cid_of_bytes(note.encode())
        assert event["content-type"] == "text/plain; charset=utf-8"
        assert event["ce-source"] == "/govfn/chronicle" and event["ce-specversion"] == "1.0"
        records = [e for e in sink.received if e["ce-type"] == "TEST"]
        assert len(records) == 3  # the records it covers went first
        ledger.append([Record.build("TEST", {"n": 3})])
        publisher.stop()  # at shutdown: the final head
        final = ledger.signed_checkpoints()[-1]
        assert spec_note.verify_note(final.encode(), vkey).split("\n")[1] == "4"
        assert wait_for(lambda: len(checkpoint_events(sink)) == 2)
    finally:
        sender.stop()
        ledger.close()


def test_a_worker_whose_head_is_older_never_stores_its_note_after_a_newer_one(
    tmp_path: Path,
) -> None:
    # Two workers of a pod sign one file: one reads the head at 6 records, the other signs
    # at 8 first. A witness takes only growing trees, so the older note must not follow.
    from govfn.chronicle.signing.checkpoint import Checkpoint

    signer = Signer.generate("govfn.example/pod")
    path = tmp_path / "chronicle.db"
    with Ledger(path, outbox=True) as slow_worker, Ledger(path, outbox=True) as fast_worker:
        slow_worker.append([Record.build("TEST", {"n": n}) for n in range(6)])
        size, root = slow_worker.head()
        stale = Checkpoint("govfn.example/pod", size, bytes.fromhex(root))
        fast_worker.append([Record.build("TEST", {"n": n}) for n in range(6, 8)])
        fresh = CheckpointPublisher(fast_worker, signer, "govfn.example/pod").publish_once()
        assert fresh is not None
        assert not slow_worker.store_signed_checkpoint(6, stale.root, stale.sign(signer))
        assert slow_worker.signed_checkpoints() == [fresh]
        assert fast_worker.store_signed_checkpoint(8, stale.root, fresh) is False  # stored once
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM note_outbox").fetchone() == (1,)


def test_settings_build_a_publisher_only_with_a_key(tmp_path: Path) -> None:
    assert assembly.checkpoint_publisher(Settings.from_env({})) is None
    key = tmp_path / "pod.key"
    key.write_text(Signer.generate("govfn.example/pod").encode() + "\n")
    env = {"GOVFN_CHRONICLE": str(tmp_path / "c.db"), "GOVFN_CHRONICLE_SIGNING_KEY": str(key)}
    publisher = assembly.checkpoint_publisher(Settings.from_env(env))
    assert publisher is not None and publisher.origin == "govfn.example/pod"
    env["GOVFN_CHRONICLE_ORIGIN"] = "pods.example/a"
    publisher = assembly.checkpoint_publisher(Settings.from_env(env))
    assert publisher is not None and publisher.origin == "pods.example/a"
    with pytest.raises(ValueError, match="GOVFN_CHRONICLE_CHECKPOINT_INTERVAL_S"):
        Settings.from_env({**env, "GOVFN_CHRONICLE_CHECKPOINT_INTERVAL_S": "soon"})
    key.write_text("not a key")
    with pytest.raises(ValueError, match=r"GOVFN_CHRONICLE_SIGNING_KEY.*signer key"):
        assembly.checkpoint_publisher(Settings.from_env(env))


def signed_sizes(sink: SinkDouble, vkey: str) -> list[int]:
    return [
        int(spec_note.verify_note(e["body"].encode(), vkey).split("\n")[1])
        for e in checkpoint_events(sink)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("interval", ["0.2", "3600"])
def test_a_serving_pod_publishes_checkpoints_on_schedule_and_at_sigterm(
    tmp_path: Path, sink: SinkDouble, interval: str
) -> None:
    signer = Signer.generate("govfn.example/serving")
    key = tmp_path / "serving.key"
    key.write_text(signer.encode() + "\n")
    vkey = signer.verifier().encode()
    env = {
        "K_SINK": sink.url,
        "GOVFN_CHRONICLE_SIGNING_KEY": str(key),
        "GOVFN_CHRONICLE_CHECKPOINT_INTERVAL_S": interval,
    }
    server = start_server(tmp_path, "--workers", "2", env=env)
    try:
        post_echo_events(server.url, 4, "cp")
        if interval == "0.2":  # on schedule, while serving
            assert wait_for(lambda: 8 in signed_sizes(sink, vkey)), server.log_text()
        else:
            assert wait_for(
                lambda: (
                    len([e for e in sink.received if e["ce-type"] != "CHRONICLE_CHECKPOINT"]) == 8
                )
            )
            assert signed_sizes(sink, vkey) == []
    finally:
        stop_server(server)  # SIGTERM
    assert server.process.returncode == 0, server.log_text()
    assert 8 in signed_sizes(sink, vkey)  # sent before the workers exited
    with Ledger(server.ledger) as ledger:
        notes = ledger.signed_checkpoints()
        size, root = ledger.head()
        assert size == 8 and ledger.verify().ok
    last = spec_note.verify_note(notes[-1].encode(), vkey).split("\n")
    root64 = base64.b64encode(bytes.fromhex(root)).decode()
    assert last[:3] == ["govfn.example/serving", "8", root64]
    assert len(set(notes)) == len(notes)  # one note per head, however many workers sign


def test_cryptography_is_imported_only_when_a_signing_key_is_set(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    code = (
        "from govfn.app import create_app\n"
        "from govfn.settings import Settings\n"
        "app = create_app(settings=Settings.from_env())\n"
        "import sys, json\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('cryptography'))))\n"
    )
    key = tmp_path / "pod.key"
    key.write_text(Signer.generate("govfn.example/pod").encode() + "\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GOVFN_", "OTEL_", "K_"))}
    base["GOVFN_CHRONICLE"] = str(tmp_path / "chronicle.db")

    def crypto_modules(env: dict[str, str]) -> list[str]:
        output = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
            env=env,
        ).stdout  # fmt: skip
        return list(json.loads(output.strip().splitlines()[-1]))

    assert crypto_modules(base) == []
    assert crypto_modules(base | {"GOVFN_CHRONICLE_SIGNING_KEY": str(key)}) != []
