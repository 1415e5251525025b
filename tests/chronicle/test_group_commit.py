"""Group commit: concurrent records share a transaction; each waits for its own commit
(on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from govfn.chronicle import Ledger, LedgerChronicle, Record
from govfn.chronicle.client import AsyncLedgerChronicle
from govfn.chronicle.postgres.ledger import PostgresLedger
from govfn.chronicle.sqlite.ledger import LedgerError

from support.ledgers import chronicle_for, open_ledger

backends = pytest.mark.parametrize("backend", ["sqlite", "postgres"])


def records(n: int) -> list[Record]:
    return [Record.build("T", {"i": i}) for i in range(n)]


@backends
def test_concurrent_emits_share_commits_in_order(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with open_ledger(backend, request, tmp_path) as ledger:
        chronicle = chronicle_for(ledger)
        batch = records(32)

        async def emit_all() -> list[str]:
            return list(await asyncio.gather(*(chronicle.emit_record(r) for r in batch)))

        cids = asyncio.run(emit_all())
        assert cids == [r.cid for r in batch]
        assert chronicle.commits < 32  # shared, not one per record
        assert [r.cid for r in ledger.records()] == cids and ledger.verify().ok


@backends
def test_a_lone_emit_commits_at_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with open_ledger(backend, request, tmp_path) as ledger:
        chronicle = chronicle_for(ledger)

        async def one_by_one() -> None:
            for record in records(5):
                await chronicle.emit_record(record)
                assert ledger.get(record.cid) == record  # durable when emit returns

        asyncio.run(one_by_one())
        assert chronicle.commits == 5


@backends
def test_a_failed_commit_fails_its_whole_batch(backend: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    chronicle: LedgerChronicle | AsyncLedgerChronicle = LedgerChronicle(Ledger(blocker / "c.db"))
    if backend == "postgres":  # nothing listens on port 1 of loopback
        chronicle = AsyncLedgerChronicle(PostgresLedger("postgresql://u:pw@127.0.0.1:1/db"))

    async def emit_all() -> list[object]:
        return list(
            await asyncio.gather(
                *(chronicle.emit_record(r) for r in records(4)), return_exceptions=True
            )
        )

    outcomes = asyncio.run(emit_all())
    assert all(isinstance(o, LedgerError) for o in outcomes)


@backends
def test_cancelled_waiter_does_not_break_the_batch(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with open_ledger(backend, request, tmp_path) as ledger:
        chronicle = chronicle_for(ledger)

        async def scenario() -> None:
            first, second = records(2)
            doomed = asyncio.ensure_future(chronicle.emit_record(first))
            kept = asyncio.ensure_future(chronicle.emit_record(second))
            await asyncio.sleep(0)
            doomed.cancel()
            assert await kept == second.cid
            with pytest.raises(asyncio.CancelledError):
                await doomed

        asyncio.run(scenario())
        assert len(ledger) == 2 and ledger.verify().ok  # the cancelled record is committed too


def test_tasks_ready_together_share_each_commit_as_they_go(tmp_path: Path) -> None:
    with Ledger(tmp_path / "c.db") as ledger:
        chronicle = LedgerChronicle(ledger)
        pairs = [
            (Record.build("T", {"task": n}), Record.build("T", {"task": n, "end": 1}))
            for n in range(8)
        ]

        async def invocation(first: Record, second: Record) -> None:
            await chronicle.emit_record(first)
            await chronicle.emit_record(second)

        async def together() -> None:
            await asyncio.gather(*(invocation(*pair) for pair in pairs))

        asyncio.run(together())
        assert chronicle.commits == 2  # every first record in one commit, every second in another
        assert len(ledger) == 16 and ledger.verify().ok


@pytest.mark.parametrize("lanes", [1, 2])
def test_records_emitted_while_every_lane_commits_share_the_next_commit(
    postgres_uri: str, lanes: int
) -> None:
    with PostgresLedger(postgres_uri, commit_lanes=lanes) as ledger:
        chronicle = AsyncLedgerChronicle(ledger)
        batch = records(100)

        async def waves() -> None:
            busy = []
            for record in batch[: ledger.commit_lanes]:  # each lane starts a one-record commit
                busy.append(asyncio.ensure_future(chronicle.emit_record(record)))
                for _ in range(3):
                    await asyncio.sleep(0)
            rest = [asyncio.ensure_future(chronicle.emit_record(r)) for r in batch[len(busy) :]]
            await asyncio.gather(*busy, *rest)

        asyncio.run(waves())
        assert chronicle.commits <= 2 * ledger.commit_lanes  # not one commit per record
        assert sorted(r.cid for r in ledger.records()) == sorted(r.cid for r in batch)
        report = ledger.verify()
        assert report.ok and len(report.heads) == ledger.commit_lanes


def test_a_batch_left_open_by_a_stopped_loop_takes_no_record_of_the_next(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "chronicle.db")
    chronicle = LedgerChronicle(ledger)
    first, second = records(2)
    stopped = asyncio.new_event_loop()
    opener = stopped.create_task(chronicle.emit_record(first))
    stopped.call_soon(stopped.stop)
    stopped.run_forever()  # the opener waits for its pass; the loop stops first
    assert not opener.done()

    async def emit_on_another_loop() -> str:
        return await asyncio.wait_for(chronicle.emit_record(second), timeout=10)

    assert asyncio.run(emit_on_another_loop()) == second.cid  # its own batch, committed
    assert ledger.get(second.cid) == second
    stopped.run_until_complete(opener)  # the first batch commits when its loop runs again
    stopped.close()
    assert ledger.get(first.cid) == first
    ledger.close()
