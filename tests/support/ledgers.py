"""Helpers for tests that run against both Chronicle backends (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from typing import Any

import psycopg
import pytest

from govfn.chronicle.postgres.ledger import PostgresLedger
from govfn.chronicle.sqlite.ledger import Ledger

# For tests taking the `ledger` fixture: run them once per backend.
BOTH_BACKENDS = pytest.mark.parametrize("ledger", ["sqlite", "postgres"], indirect=True)

AnyLedger = Ledger | PostgresLedger


def location(ledger: AnyLedger) -> str:
    """What GOVFN_CHRONICLE / --ledger would say for this ledger."""
    return str(ledger.path) if isinstance(ledger, Ledger) else ledger.uri


def tamper(ledger: AnyLedger, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
    """Run statements as a tamperer who first switches the append-only triggers off.
    SQL is written for SQLite (`records`, `?`); for PostgreSQL the table becomes
    `chronicle.records` (the test's ledger has one log) and `?` becomes `%s`.
    Returns the rows of the last statement."""
    import sqlite3

    rows: list[Any] = []
    if isinstance(ledger, Ledger):
        with closing(sqlite3.connect(ledger.path, isolation_level=None)) as conn:
            conn.execute("DROP TRIGGER IF EXISTS records_no_update")
            conn.execute("DROP TRIGGER IF EXISTS records_no_delete")
            for sql, params in statements:
                rows = conn.execute(sql, params).fetchall()
        return rows
    with psycopg.connect(ledger.uri, autocommit=True) as conn:
        conn.execute("ALTER TABLE chronicle.records DISABLE TRIGGER USER")
        try:
            for sql, params in statements:
                pg_sql = sql.replace("?", "%s").replace("records", "chronicle.records")
                cursor = conn.execute(pg_sql, params)
                rows = cursor.fetchall() if cursor.description else []
        finally:
            conn.execute("ALTER TABLE chronicle.records ENABLE TRIGGER USER")
    return rows


def open_ledger(
    backend: str, request: pytest.FixtureRequest, directory: Any, *, outbox: bool = False
) -> AnyLedger:
    """A new ledger on `backend`: a file in `directory`, or a fresh PostgreSQL database."""
    if backend == "postgres":
        return PostgresLedger(request.getfixturevalue("postgres_uri"), outbox=outbox)
    return Ledger(directory / "chronicle.db", outbox=outbox)


def sink_sender(ledger: AnyLedger, sink_url: str, **options: Any) -> Any:
    """A K_SINK sender reading the outbox of `ledger`, whichever backend holds it."""
    from govfn.chronicle.postgres.outbox import PostgresOutbox
    from govfn.chronicle.sink import SinkSender

    if isinstance(ledger, Ledger):
        return SinkSender(ledger.path, sink_url, **options)
    return SinkSender(ledger.uri, sink_url, outbox=PostgresOutbox(ledger.uri), **options)  # type: ignore[arg-type]


def chronicle_for(ledger: AnyLedger) -> Any:
    """The group-commit client the runtime would use for `ledger`."""
    return ledger.client()
