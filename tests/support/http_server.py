"""Helpers for the HTTP and interop tests: event headers and a real `govfn serve` on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parent.parent
PYTHON = sys.executable
SAMPLE_MODULES = ("govfn.functions", "support.http_samples")


def binary_headers(
    event_type: str = "ECHO_REQUESTED", event_id: str = "e-1", **extra: str
) -> dict[str, str]:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/tests/http",
        "ce-type": event_type,
        "content-type": "application/json",
    }
    for name, value in extra.items():  # CloudEvents attributes, except the tracing header
        headers[name if name == "traceparent" else f"ce-{name}"] = value
    return headers


def post_echo_events(url: str, count: int, id_prefix: str) -> None:
    """POST `count` echo events (ids `<id_prefix>-0`, ...) to `url`, each answered 200."""
    for i in range(count):
        request = urllib.request.Request(
            url + "/",
            data=b'{"i": %d}' % i,
            headers=binary_headers(event_id=f"{id_prefix}-{i}"),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    ledger: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_server(
    tmp: Path,
    *args: str,
    env: dict[str, str] | None = None,
    port_from_env: bool = False,
    gunicorn_app: str | None = None,
    timeout_s: float = 20.0,
    python: str = PYTHON,
    cwd: Path | None = None,
    wait_for: str = "/health/readiness",
) -> Server:
    """`python -m govfn serve` (or gunicorn itself serving `gunicorn_app`) on a free loopback
    port, in `cwd` (default: this process's), returned once `wait_for` answers 200. `python`
    and `cwd` serve another project from its own venv."""
    port = free_port()
    ledger = tmp / "chronicle.db"
    log = tmp / "server.log"
    environ = {key: value for key, value in os.environ.items() if not key.startswith("GOVFN_")}
    environ.update(
        GOVFN_CHRONICLE=str(ledger),
        PYTHONPATH=os.pathsep.join([str(HERE.parent), str(REPO / "src")]),
    )
    environ.update(env or {})
    command = [python, "-m", "govfn", "serve", "--host", "127.0.0.1", *args]
    if gunicorn_app is not None:
        command = [python, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", *args, gunicorn_app]
    elif port_from_env:
        environ["PORT"] = str(port)
    else:
        command += ["--port", str(port)]
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command, env=environ, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT
        )
    server = Server(process, port, ledger, log)
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / 0.05)):
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{server.log_text()}")
        try:
            with urllib.request.urlopen(server.url + wait_for, timeout=1) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    stop_server(server)
    raise AssertionError(f"server not ready in {timeout_s}s:\n{server.log_text()}")


def worker_pids(arbiter: int) -> list[int]:
    """The gunicorn workers a server's arbiter (a process the test started) has forked."""
    children = Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text()
    return [int(pid) for pid in children.split()]


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(5)
