"""What `govfn serve` checks before it says it serves: the address it listens on, and
that an embedded Chronicle can be written. Each failure is one `ValueError` naming the
fix, so that the command exits at once rather than retrying a port for seconds behind a
"serving" banner, or answering 503 to everything because `./var/` is read-only.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from govfn.settings import Settings

BACKLOG = 2048  # gunicorn's default; its arbiter listens on the socket again with its own


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, bound now (no retries); ValueError says why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise ValueError(
                f"cannot listen on {where}: the port is in use (another govfn serve?); "
                "stop what holds it or choose another with --port"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ValueError(
                f"cannot listen on {where}: {host!r} is not an address of this machine (--host)"
            ) from None
        raise ValueError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    return sock


def check_writable(settings: Settings) -> None:
    """The embedded Chronicle's folder (ledger, idempotency file, spool, metrics) can be
    written; ValueError names the path and GOVFN_CHRONICLE. A PostgreSQL Chronicle is
    not checked here: a database that is down at start is waited for (readiness)."""
    places: list[tuple[Path, str]] = []
    if settings.chronicle_uri is None:
        places.append((settings.chronicle_path.parent, "GOVFN_CHRONICLE"))
    if settings.spool_dir is not None:
        places.append((settings.spool_dir, "GOVFN_CHRONICLE_SPOOL"))
    target = settings.idempotency_target()
    if "://" not in target:
        places.append((Path(target).parent, "GOVFN_IDEMPOTENCY"))
    for folder, variable in places:
        problem = _not_writable(folder)
        if problem is not None:
            example = "/tmp/govfn/chronicle.db" if variable == "GOVFN_CHRONICLE" else "/tmp/govfn"
            raise ValueError(
                f"cannot write {str(folder)!r} ({problem}): the Chronicle needs a writable "
                f"place; set {variable} to one (e.g. {variable}={example}), or "
                "GOVFN_CHRONICLE to a postgresql:// URI"
            )
    ledger = settings.chronicle_path
    if settings.chronicle_uri is None and ledger.exists() and not os.access(ledger, os.W_OK):
        raise ValueError(
            f"cannot write the Chronicle ledger {str(ledger)!r}: set GOVFN_CHRONICLE to a "
            "writable file"
        )


def _not_writable(folder: Path) -> str | None:
    """Why a file cannot be created in `folder` (made if missing), or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # A file made and removed with `os` alone: `tempfile` (with `shutil`, `random` and
        # the compression modules) would cost each cold start ~5 ms and ~0.6 MB kept.
        probe = folder / f".govfn-check-{os.getpid()}-{os.urandom(4).hex()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
