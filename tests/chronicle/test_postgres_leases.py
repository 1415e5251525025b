"""A stable set of logs on PostgreSQL (`govfn.chronicle.postgres.leases`), on a real server:
a writer that starts after another stopped continues its log, writers at once lease
distinct logs and restarts add none, commit lanes lease theirs, a lane whose connection
was cut and whose log was taken meanwhile moves to another without storing a record twice,
and a writer whose lease was lost cannot fork the log it still believes its own."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from govfn.chronicle import Record
from govfn.chronicle.postgres.leases import LEASE_KEY
from govfn.chronicle.postgres.ledger import PostgresLedger
from govfn.chronicle.store import LedgerError


def make(n: int, tag: str) -> list[Record]:
    return [Record.build("TEST", {"tag": tag, "n": i}) for i in range(n)]


def sizes(ledger: PostgresLedger) -> dict[int, int]:
    return {head.log: head.tree_size for head in ledger.tree_heads() if head.log is not None}


def cut_the_holder_of(uri: str, log_id: int) -> int:
    """Terminate the session holding a log's lease (a pod's connection that dropped)."""
    with psycopg.connect(uri, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 2",
            (LEASE_KEY, log_id),
        ).fetchall()
    return len(rows)


def test_a_writer_that_starts_after_another_stopped_continues_its_log(postgres_uri: str) -> None:
    with PostgresLedger(postgres_uri) as first:
        first.append(make(3, "first"))
    with PostgresLedger(postgres_uri) as second:
        second.append(make(2, "second"))
        assert second.log_ids() == [1] and sizes(second) == {1: 5}
        assert [r.payload["tag"] for r in second.records()] == ["first"] * 3 + ["second"] * 2
        assert second.verify().ok


def test_writers_at_once_lease_distinct_logs_and_restarts_add_none(postgres_uri: str) -> None:
    for round_ in range(3):
        with PostgresLedger(postgres_uri) as one, PostgresLedger(postgres_uri) as two:
            one.append(make(2, f"one-{round_}"))
            two.append(make(1, f"two-{round_}"))
            assert {log.log_id for log in one.own_logs()} != {log.log_id for log in two.own_logs()}
    with PostgresLedger(postgres_uri) as ledger:
        assert ledger.log_ids() == [1, 2]
        assert sorted(sizes(ledger).values()) == [3, 6]
        report = ledger.verify()
        assert report.ok and report.records == 9


def test_commit_lanes_lease_logs_of_the_set(postgres_uri: str) -> None:
    async def lanes(ledger: PostgresLedger, tag: str) -> None:
        await asyncio.gather(
            ledger.append_async(make(2, f"{tag}-0"), lane=0),
            ledger.append_async(make(3, f"{tag}-1"), lane=1),
        )

    for tag in ("start", "restart"):
        with PostgresLedger(postgres_uri) as ledger:
            asyncio.run(lanes(ledger, tag))
    with PostgresLedger(postgres_uri) as ledger:
        assert ledger.log_ids() == [1, 2] and sum(sizes(ledger).values()) == 10
        assert ledger.verify().ok


def test_a_lane_whose_log_was_taken_moves_without_storing_twice(postgres_uri: str) -> None:
    lane = PostgresLedger(postgres_uri)
    other = PostgresLedger(postgres_uri)

    async def pod() -> None:  # one event loop: the same lane throughout
        await lane.append_async(make(2, "lane"))
        assert cut_the_holder_of(postgres_uri, 1) == 1  # the lane's connection dropped
        other.append(make(3, "other"))  # leases the log the lane held
        await lane.append_async(make(4, "lane-again"))  # reconnects; log 1 is taken: log 2

    try:
        asyncio.run(pod())
        assert sizes(other) == {1: 5, 2: 4}
        assert [log.log_id for log in lane.own_logs()] == [2]  # log 1 is the other's now
        cids = [r.cid for r in other.records()]
        assert len(cids) == len(set(cids)) == 9
        assert other.verify().ok
    finally:
        lane.close()
        other.close()


def test_a_writer_that_lost_its_lease_cannot_fork_the_log(postgres_uri: str) -> None:
    stale = PostgresLedger(postgres_uri)
    other = PostgresLedger(postgres_uri)
    try:
        stale.append(make(2, "stale"))
        assert cut_the_holder_of(postgres_uri, 1) == 1
        other.append(make(3, "other"))  # takes log 1: the stale writer still thinks it its own
        refused = make(1, "stale-again")
        with pytest.raises(LedgerError, match="duplicate key"):
            stale.append(refused)  # seq 3 is taken: refused, not forked
        stale.append(refused)  # in doubt: resumes from the head, after the other's records
        assert sizes(other) == {1: 6}
        tags = [r.payload["tag"] for r in other.records()]
        assert tags == ["stale"] * 2 + ["other"] * 3 + ["stale-again"]
        assert other.verify().ok
    finally:
        stale.close()
        other.close()
