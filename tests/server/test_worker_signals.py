"""Signals to govfn's worker under a real gunicorn, on the worker's event loop (uvloop's): a
signal that comes while the worker starts, before its loop runs, is acted on as one that
comes while it is idle in the loop; SIGHUP and SIGUSR1 do what gunicorn defines for them."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from support.http_server import Server, start_server, stop_server, worker_pids
from support.http_wire import raw_request
from support.waiting import wait_for

pytestmark = pytest.mark.slow
GRACEFUL_TIMEOUT_S = 10

# gunicorn runs `post_worker_init` in a new worker after its app is loaded, before the worker
# runs its loop: there the first worker of the server sends itself SIGNAL_AT_START, once.
CONFIG = """
import os
import signal
from pathlib import Path


def post_worker_init(worker):
    name = os.environ.get("SIGNAL_AT_START")
    first = Path(os.environ["FIRST_WORKER_FILE"])
    if name and not first.exists():
        first.write_text(str(worker.pid))
        os.kill(worker.pid, signal.Signals[name])
"""


def serve(tmp_path: Path, signal_at_start: str = "", *args: str) -> Server:
    config = tmp_path / "gunicorn_conf.py"
    config.write_text(CONFIG)
    env = {"GOVFN_FUNCTION": "echo", "FIRST_WORKER_FILE": str(tmp_path / "first_worker")}
    env["SIGNAL_AT_START"] = signal_at_start
    return start_server(
        tmp_path,
        "-c", str(config), "-k", "govfn.server.worker.GovfnWorker", "--no-control-socket",
        "--graceful-timeout", str(GRACEFUL_TIMEOUT_S), *args,
        gunicorn_app="govfn.app:create_app()",
        env=env,
    )  # fmt: skip


def echoes(server: Server) -> bool:
    headers = [("ce-specversion", "1.0"), ("ce-id", f"e-{os.urandom(4).hex()}")]
    headers += [("ce-source", "/tests/server"), ("ce-type", "ECHO_REQUESTED")]
    headers += [("content-type", "application/json")]
    answer = raw_request(server.port, "POST", "/", headers, b'{"n":1}')
    return answer.status == 200 and answer.json() == {"n": 1}


def replaced(server: Server, worker: int) -> bool:
    """Whether `worker` has exited and the arbiter has a worker serving in its place."""
    gone = wait_for(lambda: worker not in worker_pids(server.process.pid), GRACEFUL_TIMEOUT_S)
    return gone and wait_for(lambda: len(worker_pids(server.process.pid)) == 1) and echoes(server)


def open_files(pid: int) -> set[str]:
    named = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile
            named.add(os.readlink(fd))
    return named


def stopped_cleanly(server: Server) -> bool:
    server.process.send_signal(signal.SIGTERM)
    return server.process.wait(timeout=GRACEFUL_TIMEOUT_S + 5) == 0


@pytest.mark.parametrize(
    ("name", "exit_code"), [("SIGTERM", 0), ("SIGQUIT", 0), ("SIGINT", 0), ("SIGABRT", 1)]
)
def test_a_signal_while_the_worker_starts_is_acted_on_once_its_loop_runs(
    tmp_path: Path, name: str, exit_code: int
) -> None:
    server = serve(tmp_path, name)
    try:
        first = int((tmp_path / "first_worker").read_text())
        assert replaced(server, first), server.log_text()
        assert stopped_cleanly(server)
    finally:
        stop_server(server)
    log = server.log_text()
    assert f"Worker exiting (pid: {first})" in log
    assert (f"Worker (pid:{first}) exited with code {exit_code}" in log) == (exit_code != 0)
    assert "Traceback" not in log


@pytest.mark.parametrize("name", ["SIGTERM", "SIGQUIT", "SIGINT"])
def test_a_signal_to_a_worker_idle_in_its_loop_stops_it(tmp_path: Path, name: str) -> None:
    server = serve(tmp_path)
    try:
        [worker] = worker_pids(server.process.pid)
        os.kill(worker, signal.Signals[name])
        assert replaced(server, worker), server.log_text()
        assert stopped_cleanly(server)
    finally:
        stop_server(server)
    assert f"Worker exiting (pid: {worker})" in server.log_text()
    assert "Traceback" not in server.log_text()


def test_sighup_to_the_arbiter_replaces_its_worker_gracefully(tmp_path: Path) -> None:
    server = serve(tmp_path)
    try:
        [worker] = worker_pids(server.process.pid)
        server.process.send_signal(signal.SIGHUP)
        assert replaced(server, worker), server.log_text()
        assert stopped_cleanly(server)
    finally:
        stop_server(server)
    log = server.log_text()
    assert "Hang up" in log and f"Worker exiting (pid: {worker})" in log
    assert f"Worker (pid:{worker}) exited with code" not in log


def test_sigusr1_reopens_the_log_file_and_the_worker_keeps_serving(tmp_path: Path) -> None:
    log_file = tmp_path / "gunicorn.log"
    server = serve(tmp_path, "", "--error-logfile", str(log_file))
    try:
        [worker] = worker_pids(server.process.pid)
        log_file.rename(tmp_path / "gunicorn.log.1")  # as logrotate moves it aside

        def writes_to_the_new_file() -> bool:
            return str(log_file) in open_files(worker)

        os.kill(worker, signal.SIGUSR1)
        assert wait_for(writes_to_the_new_file, GRACEFUL_TIMEOUT_S)
        assert worker_pids(server.process.pid) == [worker] and echoes(server)
        assert stopped_cleanly(server)
    finally:
        stop_server(server)
