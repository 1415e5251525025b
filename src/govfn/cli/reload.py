"""Live reload for `govfn serve --dev`: a supervisor that serves each edit of the code.

    govfn serve --dev ...            this supervisor: binds the port once, then
      └── govfn serve ... --no-reload --listen-fd N --ready-fd M     the server (gunicorn)

The supervisor holds the listening socket and hands it to each server it starts, so an
old and a new server accept from one queue and no connection is refused while they swap.
A server reports on its ready pipe the source files it loaded: the modules defining its
functions and what they imported from outside the standard library, the installed
packages and govfn. The supervisor polls their modification times (as uvicorn's
StatReload and werkzeug's stat reloader, which functions-framework's `--debug` uses, do)
and, when one changes, starts a new server beside the old one: once the new one is ready
the old one drains (SIGTERM) and the new one serves; a new one that fails to load exits
with its error (file and line) and the old one goes on serving.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import select
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterable, Sequence
from types import FrameType

from govfn.registry import FunctionRegistry

POLL_S = 0.25
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 35.0  # the server's graceful timeout (30 s) and some

Stamp = tuple[int, int] | None  # (mtime_ns, size), None for a file that is gone


def say(message: str) -> None:
    print(f"govfn: {message}", file=sys.stderr, flush=True)


def watched_files(before: Iterable[str], registry: FunctionRegistry) -> list[str]:
    """The source files to watch once `registry` is loaded: those of the modules that
    define its functions, and of every module imported since `before` (module names) that
    is neither in the standard library, an installed package nor govfn itself."""
    import govfn

    paths = sysconfig.get_paths()
    folders = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    folders.append(os.path.dirname(govfn.__file__))
    library = tuple(os.path.join(os.path.realpath(folder), "") for folder in folders)
    files: set[str] = set()
    for plugin in registry.all():
        source = _source(type(plugin).__module__)
        if source is not None:
            files.add(source)
    for name in set(sys.modules) - set(before):
        source = _source(name)
        if source is not None and not source.startswith(library):
            files.add(source)
    return sorted(files)


def _source(module_name: str) -> str | None:
    path = getattr(sys.modules.get(module_name), "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py"):
        return None
    return os.path.realpath(path)


def report_ready(fd: int, files: Sequence[str]) -> None:
    """In a server started by the supervisor: say it is about to serve, and what to watch
    (each file with the modification time and size it has now, just after loading)."""
    with os.fdopen(fd, "w", encoding="utf-8") as pipe:
        json.dump({"pid": os.getpid(), "files": {path: _stamp(path) for path in files}}, pipe)


class Supervisor:
    """Starts servers on one listening socket, and a new one for each edit."""

    def __init__(self, argv: Sequence[str], listener: socket.socket, poll_s: float = POLL_S):
        self.argv = list(argv)
        self.listener = listener
        self.poll_s = poll_s
        self.stopping = False
        self.server: subprocess.Popen[bytes] | None = None

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit status of the last server otherwise. The
        server under way is drained whatever ends the loop."""
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self._stop)
        started = self.start()
        if started is None:
            return 1
        self.server, stamps = started
        try:
            return self._watch(self.server, stamps)
        finally:
            self.retire(self.server)

    def _watch(self, server: subprocess.Popen[bytes], stamps: dict[str, Stamp]) -> int:
        while not self.stopping:
            time.sleep(self.poll_s)
            if server.poll() is not None:
                say(f"the server exited with status {server.returncode}")
                return server.returncode or 1
            changed = [path for path, stamp in stamps.items() if _stamp(path) != stamp]
            if not changed:
                continue
            say(f"{', '.join(map(_shown, changed))} changed; reloading")
            for path in changed:
                with contextlib.suppress(OSError):  # its bytecode, which may be as new
                    os.remove(importlib.util.cache_from_source(path))
            stamps.update((path, _stamp(path)) for path in changed)
            replacement = self.start()
            if replacement is None:
                say("the edited code did not load (see above); still serving the previous code")
                continue
            previous, (server, reported) = server, replacement
            self.server = server
            # A file known before keeps the stamp seen before the new server started, so
            # that an edit made while it loaded counts as a change (one more reload).
            stamps = {path: stamps.get(path, stamp) for path, stamp in reported.items()}
            say(f"reloaded: serving the edited code (pid {server.pid})")
            self.retire(previous)
        return 0

    def start(self) -> tuple[subprocess.Popen[bytes], dict[str, Stamp]] | None:
        """A new server on the socket, once it reports ready; None if it exits first."""
        read, write = os.pipe()
        fd = self.listener.fileno()
        command = [sys.executable, "-m", "govfn", "serve", *self.argv, "--no-reload"]
        command += ["--listen-fd", str(fd), "--ready-fd", str(write)]
        try:
            server = subprocess.Popen(command, pass_fds=(fd, write), preexec_fn=_end_with_parent)
        except OSError as exc:
            say(f"cannot start a server: {exc}")
            return None
        finally:
            os.close(write)
        with os.fdopen(read, "rb") as pipe:
            report = _read_report(pipe.fileno(), server)
        if report is None:
            if server.poll() is None:
                say(f"the server did not start within {READY_TIMEOUT_S:g}s; stopping it")
                self.retire(server)
            return None
        files = report.get("files")
        if not isinstance(files, dict):
            return server, {}
        return server, {str(path): _as_stamp(stamp) for path, stamp in files.items()}

    def retire(self, server: subprocess.Popen[bytes] | None) -> None:
        """Drain a server (SIGTERM), then end it if it takes too long."""
        if server is None or server.poll() is not None:
            return
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True


def _end_with_parent() -> None:
    """In a server, before it runs: SIGTERM when the supervisor dies, however it dies
    (Linux's PR_SET_PDEATHSIG; elsewhere the server outlives a killed supervisor)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def _read_report(fd: int, server: subprocess.Popen[bytes]) -> dict[str, object] | None:
    data = b""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:  # the server closed the pipe: reported, or exited
                break
            data += chunk
        elif server.poll() is not None:
            break
    try:
        report = json.loads(data) if data else None
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def _as_stamp(value: object) -> Stamp:
    if isinstance(value, list) and len(value) == 2:
        return int(value[0]), int(value[1])
    return None


def _stamp(path: str) -> Stamp:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def _shown(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
