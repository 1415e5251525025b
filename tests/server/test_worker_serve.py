"""`govfn serve` end to end with either worker class: govfn's (the default) drains on SIGTERM
and exits at once on SIGQUIT; gthread still serves the key cases."""

from __future__ import annotations

import signal
import socket
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from govfn.chronicle import Ledger

from support.http_native import closed_by_peer, read_answers
from support.http_server import (
    SAMPLE_MODULES,
    Server,
    binary_headers,
    start_server,
    stop_server,
    worker_pids,
)
from support.http_wire import raw_request

pytestmark = pytest.mark.slow
MODULES = [arg for name in SAMPLE_MODULES for arg in ("--functions", name)]


def post(server: Server, path: str, body: bytes, event_type: str = "ECHO_REQUESTED", **kw: bool):  # type: ignore[no-untyped-def]
    headers = list(binary_headers(event_type, event_id=f"id-{time.monotonic_ns()}").items())
    return raw_request(server.port, "POST", path, headers, body, **kw)


@pytest.fixture(scope="module")
def gthread(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("gthread")
    running = start_server(tmp, *MODULES, "--worker-class", "gthread", "--threads", "4", "--dev")
    yield running
    stop_server(running)


def test_gthread_serves_events_chunked_bodies_and_failures(gthread: Server) -> None:
    assert "gthread worker(s)" in gthread.log_text()
    answer = post(gthread, "/functions/echo/events", b'{"via":"gthread"}')
    assert (answer.status, answer.json()) == (200, {"via": "gthread"})
    assert answer.headers["ce-type"] == "ECHO_REPLIED"
    headers = [*binary_headers(event_id="g-chunked").items(), ("Transfer-Encoding", "chunked")]
    chunked = raw_request(
        gthread.port, "POST", "/", headers, b"3\r\n[1]\r\n0\r\n\r\n", content_length=False
    )
    assert (chunked.status, chunked.json()) == (200, [1])
    assert post(gthread, "/", b"{}", "FAIL_REQUESTED").status == 500
    assert post(gthread, "/", b"{}", "REJECT_REQUESTED").problem["error_kind"] == "permanent"
    assert post(gthread, "/functions/echo/events", b"{").problem["attribute"] == "data"


def test_gthread_serves_health_and_management(gthread: Server) -> None:
    assert raw_request(gthread.port, "GET", "/health/readiness", []).json()["ready"] is True
    assert raw_request(gthread.port, "GET", "/functions/", []).json()["count"] >= 9
    invoke = raw_request(
        gthread.port,
        "POST",
        "/functions/echo/invoke",
        [("Content-Type", "application/json")],
        b'{"event": 2}',
    )
    assert invoke.status == 200 and invoke.json()["data"] == 2


def test_govfn_worker_is_the_default_and_one_loop_runs_every_handler(tmp_path: Path) -> None:
    server = start_server(tmp_path, *MODULES, "--threads", "2")
    try:
        assert "govfn worker(s)" in server.log_text()
        seen = set()
        for i in range(5):
            answer = post(server, "/", b"{}", "WHEREAMI_REQUESTED")
            assert answer.status == 200, i
            body = answer.json()
            seen.add((body["pid"], body["loop"], body["thread"]))
        assert len(seen) == 1  # one process, one loop, on one thread: no hop
        assert post(server, "/", b'"x"', "UPPER_REQUESTED").json() == "X"  # sync: executor
    finally:
        stop_server(server)


def test_sigterm_drains_keep_alive_connections_and_exits_0(tmp_path: Path) -> None:
    server = start_server(tmp_path, *MODULES, "--keep-alive", "30")
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        request = b"GET /health/liveness HTTP/1.1\r\nHost: x\r\n\r\n"  # keep-alive, then idle
        idle.sendall(request)
        assert read_answers(idle, 1)[0].status == 200

        def slow(i: int) -> tuple[int, str | None]:
            answer = post(server, "/functions/slow/events", b'{"sleep": 0.6}', "SLOW_REQUESTED")
            return answer.status, answer.headers.get("connection")

        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(slow, i) for i in range(3)]
            time.sleep(0.3)
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert closed_by_peer(idle, 5)  # the idle connection goes at once
            assert time.monotonic() - started < 3
            outcomes = [future.result(timeout=20) for future in futures]
        assert server.process.wait(timeout=20) == 0
    finally:
        idle.close()
        stop_server(server)
    assert outcomes == [(200, "close")] * 3
    assert "Traceback" not in server.log_text()


def test_sigquit_exits_at_once(tmp_path: Path) -> None:
    server = start_server(tmp_path, *MODULES)
    try:
        started = time.monotonic()
        server.process.send_signal(signal.SIGQUIT)
        server.process.wait(timeout=15)
        assert time.monotonic() - started < 5
    finally:
        stop_server(server)
    assert "Traceback" not in server.log_text()


def test_plain_gunicorn_runs_the_govfn_worker(tmp_path: Path) -> None:
    running = start_server(
        tmp_path,
        "-k", "govfn.server.worker.GovfnWorker", "--no-control-socket", "--timeout", "2",
        gunicorn_app="govfn.app:create_app()",
        env={"GOVFN_FUNCTION": "echo"},
    )  # fmt: skip
    try:
        workers = worker_pids(running.process.pid)
        time.sleep(3)  # longer than the arbiter's timeout: only a heartbeat keeps the worker
        assert worker_pids(running.process.pid) == workers and len(workers) == 1
        answer = post(running, "/", b'{"plain":"worker"}')
        assert (answer.status, answer.json()) == (200, {"plain": "worker"})
        assert raw_request(running.port, "GET", "/functions/", []).json()["count"] == 1
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=20) == 0
    finally:
        stop_server(running)
    assert "Traceback" not in running.log_text()


def test_sigterm_waits_for_an_invocation_whose_client_left(tmp_path: Path) -> None:
    server = start_server(tmp_path, *MODULES)
    try:
        headers = binary_headers("SLOW_REQUESTED", event_id="left-early")
        lines = ["POST /functions/slow/events HTTP/1.1", "Host: x", "Content-Length: 14"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b'{"sleep": 0.6}')
            time.sleep(0.15)  # the handler is running; its client goes, with a reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0
    finally:
        stop_server(server)
    with Ledger(server.ledger) as ledger:
        kinds = [r.type for r in ledger.records() if r.payload.get("function_id") == "slow"]
    assert kinds == ["FUNCTION_INVOKED", "FUNCTION_COMPLETED"]


def test_single_process_serves_from_one_process_and_drains_on_sigterm(tmp_path: Path) -> None:
    server = start_server(tmp_path, *MODULES, "--single-process")
    try:
        assert "[single process x 8 threads]" in server.log_text()
        assert worker_pids(server.process.pid) == []  # no arbiter, no fork
        where = post(server, "/", b"{}", "WHEREAMI_REQUESTED").json()
        assert where["pid"] == server.process.pid
        assert post(server, "/", b'{"one":"process"}').json() == {"one": "process"}

        def slow() -> int:
            return post(
                server, "/functions/slow/events", b'{"sleep": 0.6}', "SLOW_REQUESTED"
            ).status

        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(slow) for _ in range(2)]
            time.sleep(0.3)
            server.process.send_signal(signal.SIGTERM)
            statuses = [future.result(timeout=20) for future in futures]
        assert server.process.wait(timeout=20) == 0
    finally:
        stop_server(server)
    assert statuses == [200, 200]
    with Ledger(server.ledger) as ledger:
        kinds = [r.type for r in ledger.records() if r.payload.get("function_id") == "slow"]
    assert sorted(kinds) == ["FUNCTION_COMPLETED"] * 2 + ["FUNCTION_INVOKED"] * 2
    assert "Traceback" not in server.log_text()


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (("--workers", "2"), "--workers 2"),
        (("--worker-class", "gthread"), "--worker-class gthread"),
    ],
)
def test_single_process_refuses_a_layout_of_several(
    tmp_path: Path, extra: tuple[str, ...], named: str
) -> None:
    with pytest.raises(
        AssertionError, match=f"exited with 1:\nError: --single-process .*, not {named}\n"
    ):
        start_server(tmp_path, "--single-process", *extra)


def test_single_process_names_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(AssertionError, match=f"(?s)exited with 1.*{port}: the port is in use"):
            start_server(
                tmp_path, "--single-process", "--port", str(port), port_from_env=True, timeout_s=10
            )
