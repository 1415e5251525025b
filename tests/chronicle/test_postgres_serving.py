"""`govfn serve` with GOVFN_CHRONICLE naming a PostgreSQL database: every worker appends to
logs of its own (one per commit lane), every reply's lineage CID is in the database, and
K_SINK gets every record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from govfn.chronicle.postgres.ledger import DEFAULT_COMMIT_LANES, PostgresLedger

from support.postgres import free_port
from support.sink_double import SinkDouble

PYTHON = sys.executable
SRC = Path(__file__).resolve().parents[2] / "src"


def _ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    for _ in range(600):
        if process.poll() is not None:
            raise AssertionError(f"govfn serve exited {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/health/readiness", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    raise AssertionError(f"govfn serve not ready:\n{log.read_text()}")


def _post(url: str, n: int) -> str:
    request = urllib.request.Request(
        url + "/",
        data=json.dumps({"n": n}).encode(),
        method="POST",
        headers={
            "ce-specversion": "1.0",
            "ce-id": f"event-{n}",
            "ce-source": "/tests/chronicle",
            "ce-type": "ECHO_REQUESTED",
            "content-type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        return str(answer.headers["ce-lineagecid"])


@pytest.mark.parametrize("worker_class", ["govfn", "gthread"])
def test_a_server_on_postgres_records_every_invocation_and_sends_it(
    worker_class: str, postgres_uri: str, sink: SinkDouble, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVFN_", "K_"))}
    env |= {
        "GOVFN_CHRONICLE": postgres_uri,
        "GOVFN_IDEMPOTENCY": str(tmp_path / "var" / "idempotency.db"),
        "K_SINK": sink.url,
        "PYTHONPATH": str(SRC),
    }
    command = [PYTHON, "-m", "govfn", "serve", "--function", "echo", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "2", "--worker-class", worker_class]
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=handle, stderr=subprocess.STDOUT
        )
    try:
        _ready(url, process, log)
        with ThreadPoolExecutor(8) as pool:
            lineage = list(pool.map(lambda n: _post(url, n), range(40)))
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0, log.read_text()
    with PostgresLedger(postgres_uri) as ledger:
        report = ledger.verify()
        stored = {record.cid for record in ledger.records()}
        assert all(ledger.get(cid) is not None for cid in lineage)
    assert report.ok and report.records == 80
    assert 1 <= len(report.heads) <= 2 * DEFAULT_COMMIT_LANES  # a log per worker lane
    assert set(lineage) <= stored
    deadline = time.monotonic() + 30  # the sink double may still be reading the last posts
    while len(sink.received) < 80 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {event["ce-id"] for event in sink.received} == stored
    local = (
        sorted(p.name for p in (tmp_path / "var").iterdir()) if (tmp_path / "var").exists() else []
    )
    assert "chronicle.db" not in local  # the pod-local folder holds no ledger
