"""Fixtures shared by every test: a fresh default registry, a temporary ledger, a
CloudEvents sink double on loopback, a real PostgreSQL (one server per session, a
fresh database per test), and (`support.kube_fixtures`) a real kube-apiserver on etcd (one
per session, a fresh namespace per test)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from govfn.chronicle import Ledger
from govfn.chronicle.postgres.ledger import PostgresLedger
from govfn.registry import FunctionRegistry, use_registry

from support.postgres import PostgresServer
from support.sink_double import SinkDouble

pytest_plugins = [
    "support.app_fixtures",
    "support.asyncio_leaks",
    "support.kube_fixtures",
    "support.lineage_pipeline",
]


@pytest.fixture(autouse=True)
def fresh_default_registry() -> Iterator[FunctionRegistry]:
    """Decorators without registry= register here, never into the process default."""
    with use_registry(FunctionRegistry()) as registry:
        yield registry


@pytest.fixture
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger | PostgresLedger]:
    """A SQLite ledger in a temporary file; parametrized indirectly with "postgres"
    (see `support.ledgers.BOTH_BACKENDS`), a PostgreSQL ledger in a fresh database."""
    backend = getattr(request, "param", "sqlite")
    if backend == "postgres":
        ledger: Ledger | PostgresLedger = PostgresLedger(request.getfixturevalue("postgres_uri"))
    else:
        ledger = Ledger(tmp_path / "chronicle.db")
    yield ledger
    ledger.close()


@pytest.fixture
def sink() -> Iterator[SinkDouble]:
    server = SinkDouble()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; tests that stop it must start it again."""
    server = PostgresServer().start()
    yield server
    server.destroy()


@pytest.fixture
def postgres_uri(postgres_server: PostgresServer) -> Iterator[str]:
    """The URI of a fresh, empty database on the session's server (dropped afterwards)."""
    if not postgres_server.running():  # a test before this one crashed it and failed
        postgres_server.start()
    uri = postgres_server.create_database()
    yield uri
    if postgres_server.running():
        postgres_server.drop_database(urlsplit(uri).path.lstrip("/"))


@pytest.fixture
def private_postgres() -> Iterator[Callable[..., PostgresServer]]:
    """Start servers of this test's own (to crash and restart); all are removed afterwards."""
    servers: list[PostgresServer] = []

    def start(**options: object) -> PostgresServer:
        server = PostgresServer(**options)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.destroy()
