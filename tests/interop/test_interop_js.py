"""Interop with an independent CloudEvents implementation: the JavaScript SDK (npm
`cloudevents`) sends binary, structured and batch events to a real `govfn serve` and
parses the replies. `make test` installs the SDK into tests/interop/node_modules."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent

from support.http_server import Server, start_server, stop_server  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("interop"), "--threads", "4")
    yield running
    stop_server(running)


def test_the_javascript_sdk_talks_to_govfn(server: Server) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the interop tests need Node.js 20+")
    if not (HERE / "node_modules" / "cloudevents").is_dir():
        pytest.fail("the JavaScript SDK is not installed: run `make interop-deps`")
    done = subprocess.run(
        [node, str(HERE / "send-events.mjs"), server.url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=HERE,
    )
    assert done.stdout, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    failures = {name: c["error"] for name, c in report["checks"].items() if not c["ok"]}
    assert failures == {}, failures
    assert set(report["checks"]) == {
        "binary",
        "structured",
        "batch",
        "billing",
        "refusedWithoutGsap",
        "binaryData",
    }
    assert done.returncode == 0
