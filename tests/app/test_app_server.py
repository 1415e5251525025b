"""End to end: `python -m govfn serve` (gunicorn, gthread) on a loopback port."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from support.http_server import (
    PYTHON,
    SAMPLE_MODULES,
    Server,
    binary_headers,
    start_server,
    stop_server,
)
from support.http_wire import raw_request

pytestmark = pytest.mark.slow
TOKEN = "e2e-token-value"
MODULES = [arg for name in SAMPLE_MODULES for arg in ("--functions", name)]


def post(server: Server, path: str, headers: dict[str, str], body: bytes, **kw: bool):  # type: ignore[no-untyped-def]
    return raw_request(server.port, "POST", path, list(headers.items()), body, **kw)


def records(server: Server) -> list[tuple[str, str]]:
    with sqlite3.connect(server.ledger) as conn:
        return list(conn.execute("SELECT type, cid FROM records ORDER BY seq"))


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two workers, no --dev, a bearer token, the port from PORT."""
    tmp = tmp_path_factory.mktemp("production")
    running = start_server(
        tmp,
        *MODULES,
        "--workers",
        "2",
        "--threads",
        "4",
        env={"GOVFN_API_TOKEN": TOKEN},
        port_from_env=True,
    )
    yield running
    stop_server(running)


def test_a_binary_event_gets_its_reply_and_is_recorded(server: Server) -> None:
    answer = post(server, "/", binary_headers(event_id="e2e-1"), b'{"n":1}')
    assert answer.status == 200
    assert answer.json() == {"n": 1}
    assert answer.headers["ce-type"] == "ECHO_REPLIED"
    lineage = answer.headers["ce-lineagecid"]
    kinds = dict((cid, kind) for kind, cid in records(server))
    assert kinds[lineage] == "FUNCTION_COMPLETED"
    assert "FUNCTION_INVOKED" in kinds.values()


def test_chunked_bodies_are_read(server: Server) -> None:
    body = b'7\r\n{"n":2}\r\n0\r\n\r\n'
    headers = {**binary_headers(event_id="chunked"), "Transfer-Encoding": "chunked"}
    answer = post(server, "/", headers, body, content_length=False)
    assert (answer.status, answer.json()) == (200, {"n": 2})


def test_failures_over_the_wire(server: Server) -> None:
    assert post(server, "/", binary_headers("FAIL_REQUESTED"), b"{}").status == 500
    assert post(server, "/", binary_headers("REJECT_REQUESTED"), b"{}").status == 422
    answer = post(server, "/", binary_headers("SLOW_REQUESTED"), b'{"sleep": 3}')
    assert answer.status == 504
    assert "secret-internal-detail" not in answer.body.decode()


def test_dev_mode_opens_invoke_and_management_works(server: Server) -> None:
    answer = raw_request(
        server.port,
        "POST",
        "/functions/echo/invoke",
        [("Content-Type", "application/json")],
        b'{"event": {"x": 1}}',
    )
    assert answer.status == 200 and answer.json()["data"] == {"x": 1}
    catalogue = raw_request(server.port, "GET", "/functions/", [])
    assert catalogue.status == 200 and catalogue.json()["count"] >= 9
    metrics = raw_request(server.port, "GET", "/metrics", []).body.decode()
    assert 'govfn_invocations_total{function="echo",outcome="success"}' in metrics
    assert raw_request(server.port, "GET", "/openapi.json", []).json()["openapi"] == "3.1.0"


def test_one_event_loop_per_worker_process(production: Server) -> None:
    def ask(i: int) -> tuple[int, int]:
        answer = post(
            production, "/", binary_headers("WHEREAMI_REQUESTED", event_id=f"w{i}"), b"{}"
        )
        assert answer.status == 200
        body = answer.json()
        return body["pid"], body["loop"]

    with ThreadPoolExecutor(8) as pool:
        seen = set(pool.map(ask, range(40)))
    pids = {pid for pid, _ in seen}
    assert len(seen) == len(pids)  # every worker used a single loop for all its requests
    assert 1 <= len(pids) <= 2


def test_production_needs_the_token(production: Server) -> None:
    path, body = "/functions/echo/invoke", b'{"event": 1}'
    json_header = ("Content-Type", "application/json")
    assert raw_request(production.port, "POST", path, [json_header], body).status == 401
    wrong = [json_header, ("Authorization", "Bearer wrong")]
    assert raw_request(production.port, "POST", path, wrong, body).status == 403
    right = [json_header, ("Authorization", f"Bearer {TOKEN}")]
    answer = raw_request(production.port, "POST", path, right, body)
    assert answer.status == 200 and answer.json()["data"] == 1


def test_production_logs_one_json_line_per_invocation(production: Server) -> None:
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    headers = {**binary_headers(event_id="logged-1"), "traceparent": trace}
    answer = post(production, "/", headers, b"{}")
    assert answer.status == 200
    line = None
    for _ in range(100):  # the worker writes the line right after answering
        lines = [x for x in production.log_text().splitlines() if '"logged-1"' in x]
        if lines:
            line = json.loads(lines[0])
            break
        time.sleep(0.02)
    assert line is not None, production.log_text()
    assert line == {
        "function": "echo",
        "invocation_id": line["invocation_id"],
        "event_id": "logged-1",
        "event_source": "/tests/http",
        "event_type": "ECHO_REQUESTED",
        "outcome": "success",
        "duration_ms": line["duration_ms"],
        "lineage_cid": answer.headers["ce-lineagecid"],
        "traceparent": trace,
    }
    assert TOKEN not in production.log_text()


def test_single_function_mode_from_the_environment(tmp_path: Path) -> None:
    running = start_server(tmp_path, *MODULES, env={"GOVFN_FUNCTION": "upper"})
    try:
        answer = post(running, "/", binary_headers("UPPER_REQUESTED"), b'"quiet"')
        assert (answer.status, answer.json()) == (200, "QUIET")
        assert post(running, "/", binary_headers(), b"{}").status == 400
        catalogue = raw_request(running.port, "GET", "/functions/", []).json()
        assert [d["function_id"] for d in catalogue["functions"]] == ["upper"]
    finally:
        stop_server(running)


def test_serve_refuses_an_unknown_function(tmp_path: Path) -> None:
    done = subprocess.run(
        [PYTHON, "-m", "govfn", "serve", "--function", "nope", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"GOVFN_CHRONICLE": str(tmp_path / "c.db"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert "'nope' is not registered" in done.stderr


def test_plain_gunicorn_serves_the_app_factory(tmp_path: Path) -> None:
    running = start_server(
        tmp_path,
        "--worker-class", "gthread", "--threads", "2", "--no-control-socket",
        gunicorn_app="govfn.app:create_app()",
        env={"GOVFN_FUNCTION": "echo"},
    )  # fmt: skip
    try:
        answer = post(running, "/", binary_headers(event_id="plain"), b"[1]")
        assert (answer.status, answer.json()) == (200, [1])
        for _ in range(100):  # create_app set up the JSON invocation log for gunicorn
            if '"event_id":"plain"' in running.log_text():
                break
            time.sleep(0.02)
        assert '"event_id":"plain"' in running.log_text()
    finally:
        stop_server(running)


def test_metrics_count_the_invocations_of_every_worker(tmp_path: Path) -> None:
    server = start_server(tmp_path, *MODULES, "--workers", "2")
    try:

        def ask(i: int) -> int:
            headers = binary_headers("WHEREAMI_REQUESTED", event_id=f"m{i}")
            answer = post(server, "/", headers, b"{}")
            assert answer.status == 200
            pid: int = answer.json()["pid"]
            return pid

        sent, pids = 0, set()
        with ThreadPoolExecutor(8) as pool:
            while len(pids) < 2 and sent < 400:  # until both workers have answered some
                pids |= set(pool.map(ask, range(sent, sent + 40)))
                sent += 40
        assert len(pids) == 2

        def counted() -> int:
            text = raw_request(server.port, "GET", "/metrics", []).body.decode()
            prefix = 'govfn_invocations_total{function="whereami",outcome="success"} '
            return sum(
                int(float(line[len(prefix) :]))
                for line in text.splitlines()
                if line.startswith(prefix)
            )

        for _ in range(100):  # the answering worker's own count is live, its peer's is
            if counted() == sent:  # at most a publishing interval (1 s) behind
                break
            time.sleep(0.05)
        time.sleep(1.5)  # now both have published their last invocations
        assert [counted() for _ in range(8)] == [sent] * 8  # whichever worker answers
    finally:
        stop_server(server)
