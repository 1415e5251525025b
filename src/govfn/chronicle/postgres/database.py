"""The PostgreSQL database a Chronicle lives in: connections that fail fast when the
database vanishes, a small psycopg_pool pool (re-opened in a forked child, never closing
the parent's sessions), the schema ensured on first use, and psycopg's errors as one-line
`LedgerError`s that name the database (never a password)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from govfn.chronicle.postgres.schema import ensure_schema
from govfn.chronicle.store import LedgerError
from govfn.databases.postgres import describe_database

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 10.0
COMMIT_TIMEOUT_S = 30.0

# A database that vanishes without closing the connection (a partition, a node lost) must
# fail an append within seconds, not after the kernel's two-hour keepalive; a URI that
# sets any of these keeps its own value.
_LIVENESS = {
    "connect_timeout": str(CONNECT_TIMEOUT_S),
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "3",
    "keepalives_count": "3",
    "tcp_user_timeout": "15000",
}


# Connections of a parent process, kept referenced in a forked child so that they are
# never closed there (closing would end the parent's sessions on the shared sockets).
inherited_connections: list[object] = []


def connection_options(uri: str) -> dict[str, str]:
    """The liveness settings the URI does not set itself (TCP only: not for a Unix socket)."""
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(uri)
    host = str(given.get("host") or "")
    wanted = (
        _LIVENESS if not host.startswith("/") else {"connect_timeout": _LIVENESS["connect_timeout"]}
    )
    return {name: value for name, value in wanted.items() if name not in given}


def psycopg_operational_error() -> type[Exception]:
    import psycopg

    return psycopg.OperationalError


def unreachable(uri: str, exc: BaseException) -> LedgerError:
    """A one-line LedgerError naming the database (a connection failure says so)."""
    import psycopg

    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.OperationalError):
        return LedgerError(f"cannot reach the Chronicle {describe_database(uri)}: {reason}")
    return LedgerError(f"Chronicle {describe_database(uri)}: {reason}")


class Database:
    """The Chronicle's database (see the module docstring)."""

    def __init__(self, uri: str, *, create_schema: bool = True) -> None:
        self.uri = uri
        self.where = describe_database(uri)
        self.create_schema = create_schema
        self._options: dict[str, Any] | None
        try:
            self._options = connection_options(uri)
        except Exception:  # said at first use, like any other reason the database is unusable
            self._options = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None

    def _forked(self) -> None:
        """In a child process: forget the parent's connections."""
        if self._pid != os.getpid():
            inherited_connections.append(self._pool)
            self._pool, self._pid = None, os.getpid()

    def _checked_options(self) -> dict[str, Any]:
        if self._options is None:
            raise LedgerError("the Chronicle location is not a valid PostgreSQL URI")
        return self._options

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        options = self._checked_options()
        try:
            return psycopg.connect(self.uri, autocommit=True, **options)
        except psycopg.Error as exc:
            raise unreachable(self.uri, exc) from None

    def _open_pool(self) -> psycopg_pool.ConnectionPool[Any]:
        import psycopg
        import psycopg_pool

        self._forked()
        if self._pool is None:
            with self._connect() as probe:  # a clear error now, rather than a pool timeout
                try:
                    ensure_schema(probe, self.where, create=self.create_schema)
                except psycopg.Error as exc:
                    raise unreachable(self.uri, exc) from None
            pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
                self.uri,
                min_size=1,
                max_size=4,
                open=False,
                timeout=POOL_TIMEOUT_S,
                kwargs={"autocommit": True, **self._checked_options()},
                name="govfn-chronicle",
            )
            try:
                pool.open(wait=True, timeout=POOL_TIMEOUT_S)
            except psycopg.Error as exc:
                pool.close()
                raise unreachable(self.uri, exc) from None
            self._pool = pool
        return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit); psycopg errors become LedgerError."""
        import psycopg

        pool = self._open_pool()
        try:
            with pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise LedgerError(f"Chronicle {self.where}: {exc}".splitlines()[0]) from exc

    def prepare(self) -> None:
        """Reach the database and create the schema if needed; no connection is kept
        (workers forked afterwards open their own)."""
        import psycopg

        with self._lock, self._connect() as conn:
            try:
                ensure_schema(conn, self.where, create=self.create_schema)
            except psycopg.Error as exc:
                raise unreachable(self.uri, exc) from None

    def init_schema(self) -> None:
        """Create the schema (for `govfn chronicle init`), whatever `create_schema` says."""
        import psycopg

        with self._connect() as conn:
            try:
                ensure_schema(conn, self.where, create=True)
            except psycopg.Error as exc:
                raise unreachable(self.uri, exc) from None

    def require(self) -> None:
        """Reach the database, whose schema must exist (reading creates nothing)."""
        self.create_schema = False
        self.prepare()

    def init(self) -> str:
        self.init_schema()
        return f"Chronicle schema ready in {self.where}"

    def stream(self, query: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of a query through a server-side cursor (exports need not fit in memory)."""
        with self.connection() as conn, conn.transaction(), conn.cursor(name="govfn_read") as cur:
            cur.itersize = 2000
            cur.execute(query, params)
            yield from cur

    def close(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._forked()
                return
            if self._pool is not None:
                self._pool.close()
                self._pool = None
