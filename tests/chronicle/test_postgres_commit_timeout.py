"""A PostgreSQL commit that does not finish in time fails its batch with a LedgerError
that says so, and the writer appends again on a fresh connection (a real server)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from govfn.chronicle import Record
from govfn.chronicle.postgres import ledger as postgres_ledger
from govfn.chronicle.postgres.ledger import PostgresLedger
from govfn.chronicle.store import LedgerError


def test_a_commit_that_waits_too_long_fails_and_the_next_append_succeeds(
    postgres_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_ledger, "COMMIT_TIMEOUT_S", 0.2)
    ledger = PostgresLedger(postgres_uri)
    first, stuck, after = (Record.build("TEST", {"n": n}) for n in range(3))

    async def scenario() -> str:
        await ledger.append_async([first])  # connection, lease and schema in place
        with psycopg.connect(postgres_uri) as blocker:  # a transaction: the lock is held
            blocker.execute("LOCK TABLE chronicle.records IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(LedgerError) as failed:
                await ledger.append_async([stuck])
            blocker.rollback()
        await ledger.append_async([after])
        return str(failed.value)

    try:
        message = asyncio.run(scenario())
        assert "did not commit in 0 s" in message
        assert ledger.get(after.cid) == after and ledger.get(first.cid) == first
        assert ledger.verify().ok
    finally:
        ledger.close()
