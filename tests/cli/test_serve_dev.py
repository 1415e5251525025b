"""`govfn serve` on the real command: live reload under `--dev`, loopback by default under
`--dev`, and the failures that must come at once (a port in use, a Chronicle that cannot be
written), each with a message that names the fix."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.http_server import (
    REPO,
    Server,
    binary_headers,
    start_server,
    stop_server,
    worker_pids,
)
from support.waiting import wait_for

pytestmark = pytest.mark.slow

MODULE = """
from govfn import governed_function


@governed_function("reloadable", trigger_events=["RELOAD_REQUESTED"], emits=["RELOAD_REPLIED"])
def reloadable(event, context):
    return {"version": VERSION}
"""


def write_module(where: Path, version: str) -> None:
    (where / "reloadable.py").write_text(f"VERSION = {version}\n{MODULE}", encoding="utf-8")


def answer(server: Server) -> object:
    request = urllib.request.Request(
        server.url + "/", data=b"{}", headers=binary_headers("RELOAD_REQUESTED"), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["version"]


def answer_or_none(server: Server) -> object:
    try:
        return answer(server)
    except OSError:
        return None


def env_for(tmp: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(tmp / "code"), str(REPO / "src")])}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_an_edit_is_served_at_once_and_a_broken_edit_keeps_the_old_code(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    write_module(code, "1")
    server = start_server(tmp_path, "--dev", "--functions", "reloadable", env=env_for(tmp_path))
    servers: list[int] = []
    try:
        assert answer(server) == 1

        started = time.monotonic()
        write_module(code, "2")  # same size, very likely the same second: bytecode is stale
        assert wait_for(lambda: answer_or_none(server) == 2, timeout_s=10), server.log_text()
        took = time.monotonic() - started
        assert took < 5.0, f"the edit was served after {took:.1f}s"  # about 0.6 s here
        assert "reloadable.py changed; reloading" in server.log_text()

        (code / "reloadable.py").write_text("VERSION = (\n" + MODULE, encoding="utf-8")
        assert wait_for(lambda: "did not load" in server.log_text(), timeout_s=10)
        log = server.log_text()
        assert re.search(r"reloadable\.py, line \d+: SyntaxError", log), log
        assert "still serving the previous code" in log
        assert answer(server) == 2  # the old code still answers

        write_module(code, "3")
        assert wait_for(lambda: answer_or_none(server) == 3, timeout_s=10), server.log_text()
        servers = [int(pid) for pid in re.findall(r"serving the edited code \(pid (\d+)\)", log)]
        servers += [
            int(pid)
            for pid in re.findall(r"serving the edited code \(pid (\d+)\)", server.log_text())
        ]
    finally:
        stop_server(server)
    assert servers and wait_for(lambda: not any(alive(pid) for pid in servers), timeout_s=10)


def test_a_single_process_server_is_replaced_by_one_serving_the_edit(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    write_module(code, "1")
    server = start_server(
        tmp_path, "--dev", "--single-process", "--functions", "reloadable", env=env_for(tmp_path)
    )
    try:
        [first] = worker_pids(server.process.pid)  # the supervisor's: the server it started
        assert answer(server) == 1
        write_module(code, "2")
        assert wait_for(lambda: answer_or_none(server) == 2, timeout_s=10), server.log_text()
        assert wait_for(lambda: not alive(first), timeout_s=10), server.log_text()
    finally:
        stop_server(server)
    assert "[single process x 8 threads, dev]" in server.log_text()
    assert "Traceback" not in server.log_text()


def test_a_killed_supervisor_takes_its_server_along(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    write_module(code, "1")
    server = start_server(tmp_path, "--dev", "--functions", "reloadable", env=env_for(tmp_path))
    children = worker_pids(server.process.pid)  # the supervisor's: the server it started
    try:
        assert len(children) == 1 and answer(server) == 1
        server.process.kill()  # no chance to drain it: the kernel tells the server
        server.process.wait(10)
        assert wait_for(lambda: not alive(children[0]), timeout_s=15), server.log_text()
    finally:
        stop_server(server)
        for pid in children:  # an orphan this test made, if the check above failed
            if alive(pid):
                os.kill(pid, signal.SIGTERM)


@contextlib.contextmanager
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("dev", [False, True], ids=["serve", "serve --dev"])
def test_a_port_in_use_fails_at_once_with_a_clear_message(tmp_path: Path, dev: bool) -> None:
    with held_port() as port:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "govfn", "serve", "--host", "127.0.0.1", "--port", str(port),
             *(["--dev"] if dev else [])],
            capture_output=True, text=True, timeout=30,
            env={**os.environ, "GOVFN_CHRONICLE": str(tmp_path / "c.db")},
        )  # fmt: skip
        took = time.monotonic() - started
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in done.stderr
    assert "--port" in done.stderr
    assert "serving" not in done.stderr  # no banner before the failure
    assert took < 4.0, f"took {took:.1f}s"  # gunicorn alone retries for 5 s


def test_dev_listens_on_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "govfn", "serve", "--dev", "--no-reload", "--port", str(port)],
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "GOVFN_CHRONICLE": str(tmp_path / "c.db")},
    )  # fmt: skip
    try:
        assert process.stderr is not None
        banner = process.stderr.readline() + process.stderr.readline()
        assert f"on http://127.0.0.1:{port} " in banner
        assert "loopback only" in banner
        listening = Path("/proc/net/tcp").read_text()
        assert f"0100007F:{port:04X}" in listening  # 127.0.0.1, not 0.0.0.0
        assert f"00000000:{port:04X}" not in listening
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` made read-only: by its mode, or (for root, whom modes do not stop) by the
    immutable attribute; skipped where neither holds."""
    folder.chmod(0o555)
    immutable = False
    try:
        if _writable(folder):
            done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, timeout=10)
            immutable = done.returncode == 0
        if _writable(folder):
            pytest.skip("cannot make a read-only folder here")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def _writable(folder: Path) -> bool:
    try:
        (folder / "probe").mkdir()
    except OSError:
        return False
    (folder / "probe").rmdir()
    return True


def test_a_read_only_working_directory_fails_at_start_naming_govfn_chronicle(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GOVFN_")}
    environ["PYTHONPATH"] = str(REPO / "src")
    with read_only(work):
        done = subprocess.run(
            [sys.executable, "-m", "govfn", "serve", "--host", "127.0.0.1", "--port",
             str(_free_port())],
            capture_output=True, text=True, timeout=30, cwd=work, env=environ,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "cannot write 'var'" in done.stderr
    assert "set GOVFN_CHRONICLE" in done.stderr
    assert "serving" not in done.stderr
