"""Group commit: concurrent records share a transaction; each waits for its own commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from govfn.chronicle import Ledger, LedgerChronicle, Record
from govfn.chronicle.ledger import LedgerError


def records(n: int) -> list[Record]:
    return [Record.build("T", {"i": i}) for i in range(n)]


def test_concurrent_emits_share_commits_in_order(tmp_path: Path) -> None:
    with Ledger(tmp_path / "c.db") as ledger:
        chronicle = LedgerChronicle(ledger)
        batch = records(32)

        async def emit_all() -> list[str]:
            return list(await asyncio.gather(*(chronicle.emit_record(r) for r in batch)))

        cids = asyncio.run(emit_all())
        assert cids == [r.cid for r in batch]
        assert chronicle.commits < 32  # shared, not one per record
        assert [r.cid for r in ledger.records()] == cids and ledger.verify().ok


def test_a_lone_emit_commits_at_once(tmp_path: Path) -> None:
    with Ledger(tmp_path / "c.db") as ledger:
        chronicle = LedgerChronicle(ledger)

        async def one_by_one() -> None:
            for record in records(5):
                await chronicle.emit_record(record)
                assert ledger.get(record.cid) == record  # durable when emit returns

        asyncio.run(one_by_one())
        assert chronicle.commits == 5


def test_a_failed_commit_fails_its_whole_batch(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    chronicle = LedgerChronicle(Ledger(blocker / "c.db"))

    async def emit_all() -> list[object]:
        return list(
            await asyncio.gather(
                *(chronicle.emit_record(r) for r in records(4)), return_exceptions=True
            )
        )

    outcomes = asyncio.run(emit_all())
    assert all(isinstance(o, LedgerError) for o in outcomes)


def test_cancelled_waiter_does_not_break_the_batch(tmp_path: Path) -> None:
    with Ledger(tmp_path / "c.db") as ledger:
        chronicle = LedgerChronicle(ledger)

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
