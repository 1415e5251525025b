"""A real server whose Chronicle or database cannot be used: it says so in one log line naming
where (never a password), is not ready, answers events 503 with Retry-After (never a 2xx with
a lineagecid nothing holds), and becomes ready once the database answers. `govfn serve` itself
refuses to start on an embedded Chronicle it cannot write, naming GOVFN_CHRONICLE (a fix no
wait brings); a gunicorn of your own serving `create_app()` waits for it, not ready."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from support.http_server import Server, binary_headers, start_server, stop_server
from support.postgres import PostgresServer, free_port

CR = {"customer_id": "cust-1"}


def post(server: Server, function: str, event_type: str, data: object) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = binary_headers(event_type, "e-1", gsapcontextid="gsap-1")
    connection.request("POST", f"/functions/{function}/events", json.dumps(data), headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def readiness(server: Server) -> int:
    try:
        with urllib.request.urlopen(server.url + "/health/readiness", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def test_govfn_serve_refuses_an_unwritable_chronicle_naming_the_variable(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "govfn", "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
        env={"GOVFN_CHRONICLE": "/proc/x/c.db", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 1
    assert "cannot write '/proc/x'" in done.stderr and "set GOVFN_CHRONICLE" in done.stderr
    assert "serving" not in done.stderr
    assert time.monotonic() - started < 20


def test_an_unwritable_chronicle_is_never_acknowledged(tmp_path: Path) -> None:
    server = start_server(
        tmp_path,
        "-k", "govfn.server.worker.GovfnWorker", "--no-control-socket",
        gunicorn_app="govfn.app:create_app()",
        env={"GOVFN_CHRONICLE": "/proc/x/c.db"},
        wait_for="/health/liveness",
    )  # fmt: skip
    try:
        assert readiness(server) == 503
        for function, event_type, data in (
            ("echo", "ECHO_REQUESTED", {"a": 1}),
            ("billing", "GSAP_CR_RECEIVED", CR),
        ):
            answer = post(server, function, event_type, data)
            assert answer.status == 503 and answer.getheader("Retry-After"), function
            assert answer.getheader("ce-lineagecid") is None
        assert server.process.poll() is None  # alive, waiting for its Chronicle
    finally:
        stop_server(server)
    log = server.log_text()
    assert "cannot open Chronicle ledger '/proc/x/c.db'" in log and "not ready" in log
    assert "serving anyway" not in log


def test_a_database_down_at_start_is_waited_for(
    private_postgres: Callable[..., PostgresServer], tmp_path: Path
) -> None:
    database = private_postgres()
    uri = database.create_database().replace("postgres@", "postgres:s3cret@")
    database.stop()
    server = start_server(
        tmp_path,
        "--function",
        "billing",
        cwd=tmp_path,
        env={"GOVFN_CHRONICLE": uri},
        wait_for="/health/liveness",
    )
    try:
        assert readiness(server) == 503
        refused = post(server, "billing", "GSAP_CR_RECEIVED", CR)
        assert refused.status == 503 and refused.getheader("Retry-After")
        database.start()
        for _ in range(300):  # the probe asks the database again, once a second at most
            if readiness(server) == 200:
                break
            time.sleep(0.1)
        assert readiness(server) == 200
        billed = post(server, "billing", "GSAP_CR_RECEIVED", CR)
        assert billed.status == 200 and billed.getheader("ce-lineagecid")
    finally:
        stop_server(server)
    log = server.log_text()
    assert f"127.0.0.1:{database.port}" in log and "not ready until it answers" in log
    assert "s3cret" not in log
