"""A claimed invocation's outcome is committed with its FUNCTION_COMPLETED record: once the
record is durable, no later delivery of the same event runs the function again, whatever
dies when. On PostgreSQL with the store in the ledger's database, one statement commits
both; elsewhere the holder notes its outcome beside the claim before emitting the record,
and whoever takes the claim over from a dead holder answers from it when the ledger holds
the record. Leases are renewed while a handler runs, and lapse soon after a holder dies."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from govfn import FunctionContext, FunctionRegistry, FunctionRuntime, governed_function
from govfn.chronicle import Record
from govfn.chronicle.backstop import Backstop, Delivery
from govfn.chronicle.cid import content_cid
from govfn.chronicle.client import AsyncLedgerChronicle, LedgerChronicle
from govfn.chronicle.postgres.ledger import PostgresLedger
from govfn.chronicle.settlement import Settlement
from govfn.chronicle.sqlite.ledger import Ledger
from govfn.idempotency import IdempotencyStore, idempotency_key, open_store

from support.postgres import PostgresServer

LEASE_S = 0.4


class Node:
    """One pod's runtime: the function `f` (idempotent), a ledger and a store at `where`."""

    def __init__(self, where: str, tmp_path: Path, *, shared: bool, lease_s: float) -> None:
        self.calls: list[Any] = []
        self.gate: asyncio.Event | None = None
        registry = FunctionRegistry()

        async def handler(event: Any, ctx: FunctionContext) -> Any:
            self.calls.append(event)
            if self.gate is not None:
                await asyncio.wait_for(self.gate.wait(), 10)
            return {"billed": event["cr"]}

        governed_function("f", trigger_events=["T"], idempotent=True, registry=registry)(handler)
        if where.startswith("postgresql"):
            self.ledger: Ledger | PostgresLedger = PostgresLedger(where)
            client: Any = AsyncLedgerChronicle(self.ledger)
            store_at = where
        else:
            self.ledger = Ledger(tmp_path / "chronicle.db")
            client = LedgerChronicle(self.ledger)
            store_at = str(tmp_path / "idempotency.db")
        self.store: IdempotencyStore = open_store(
            store_at, min_lease_s=lease_s, settles_with_records=shared
        )
        self.runtime = FunctionRuntime(registry, client, idempotency=self.store)

    async def deliver(self, cr: int) -> Any:
        context = FunctionContext(event_id=f"cr-{cr}", event_source="/crs")
        return await self.runtime.invoke("f", {"cr": cr}, context)

    async def close(self) -> None:
        await self.store.aclose()
        self.ledger.close()


@pytest.fixture(params=["sqlite", "postgres-shared", "postgres-apart"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, bool]:
    if request.param == "sqlite":
        return "sqlite", False
    uri: str = request.getfixturevalue("postgres_uri")
    return uri, request.param == "postgres-shared"


@pytest.fixture
def nodes(setup: tuple[str, bool], tmp_path: Path) -> Iterator[Callable[..., Node]]:
    where, shared = setup
    made: list[Node] = []
    loop = asyncio.new_event_loop()

    def node(lease_s: float = LEASE_S) -> Node:
        made.append(Node(where, tmp_path, shared=shared, lease_s=lease_s))
        return made[-1]

    node.run = loop.run_until_complete  # type: ignore[attr-defined]
    yield node
    for each in made:
        loop.run_until_complete(each.close())
    loop.close()


def completed_ok(ledger: Ledger | PostgresLedger) -> int:
    return sum(
        1
        for record in ledger.records()
        if record.type == "FUNCTION_COMPLETED" and record.payload["success"]
    )


def test_a_holder_that_dies_after_its_record_is_durable_is_not_run_again(
    nodes: Callable[..., Node],
) -> None:
    """The first pod's handler runs and its COMPLETED record is durable, then the pod dies
    before it could mark the claim done (its `complete` never runs). The next delivery,
    on another pod after the lease, answers with the first run's result."""
    run = nodes.run  # type: ignore[attr-defined]
    dying, survivor = nodes(), nodes()

    async def dies(key: str, result: dict[str, Any]) -> None:  # killed before this write
        return None

    dying.store.complete = dies  # type: ignore[method-assign]
    first = run(dying.deliver(1))
    assert first.success and dying.calls == [{"cr": 1}]
    run(dying.store.aclose())  # its heartbeat stops with it
    time.sleep(LEASE_S * 1.5)
    again = run(survivor.deliver(1))
    assert again.success and again.replayed and survivor.calls == []
    assert again.lineage_cid == first.lineage_cid and again.data == {"billed": 1}
    assert completed_ok(survivor.ledger) == 1


def test_a_holder_that_dies_before_its_record_is_durable_is_run_again(
    nodes: Callable[..., Node],
) -> None:
    """No durable record, no outcome: the claim lapses and the next delivery runs."""
    run = nodes.run  # type: ignore[attr-defined]
    dying, survivor = nodes(), nodes()
    key = idempotency_key("f", "/crs", "cr-2")
    assert run(dying.store.claim(key, content_cid({"cr": 2}))).status == "run"
    # noted, but its record never reached the ledger (a CID no ledger holds)
    run(dying.store.note_outcome(key, {"success": True, "data": "lost"}, "bafynowhere"))
    run(dying.store.aclose())
    time.sleep(LEASE_S * 1.5)
    again = run(survivor.deliver(2))
    assert again.success and not again.replayed and survivor.calls == [{"cr": 2}]


def test_a_running_holder_keeps_its_claim_past_the_lease(nodes: Callable[..., Node]) -> None:
    """The heartbeat renews the lease while the handler runs: a delivery during a run four
    leases long finds it in progress and never runs it a second time."""
    run = nodes.run  # type: ignore[attr-defined]
    slow, other = nodes(), nodes()

    async def scenario() -> tuple[Any, list[Any]]:
        slow.gate = asyncio.Event()
        first = asyncio.ensure_future(slow.deliver(3))
        answers = []
        for _ in range(4):
            await asyncio.sleep(LEASE_S)
            answers.append(await other.deliver(3))
        slow.gate.set()
        return await first, answers

    first, answers = run(scenario())
    assert first.success and slow.calls == [{"cr": 3}] and other.calls == []
    assert [a.error_kind for a in answers] == ["in_progress"] * 4
    after = run(other.deliver(3))
    assert after.replayed and other.calls == []


def test_the_shared_database_settles_the_claim_in_the_records_statement(
    postgres_uri: str, tmp_path: Path
) -> None:
    """With the store in the ledger's database, the store writes nothing after the run:
    the append of FUNCTION_COMPLETED marks the claim done."""
    node = Node(postgres_uri, tmp_path, shared=True, lease_s=LEASE_S)
    writes: list[str] = []

    async def counted(key: str, result: dict[str, Any]) -> None:
        writes.append(key)

    node.store.complete = counted  # type: ignore[method-assign]
    node.store.note_outcome = counted  # type: ignore[method-assign,assignment]

    async def scenario() -> Any:
        try:
            return await node.deliver(4)
        finally:
            await node.close()

    result = asyncio.run(scenario())
    assert result.success and writes == []
    with psycopg.connect(postgres_uri) as conn:
        state, stored = conn.execute("SELECT state, result FROM idempotency.claims").fetchone()
    assert state == "done" and json.loads(stored)["lineage_cid"] == result.lineage_cid


def test_a_spooled_record_keeps_its_settlement(tmp_path: Path) -> None:
    """A record the ledger refused is spooled with its settlement; the process that adopts
    the spool hands both over together."""

    class Refusing:
        def __init__(self, up: bool) -> None:
            self.up = up
            self.got: list[tuple[Record, Settlement | None]] = []

        async def emit(self, event_type: str, payload: dict[str, Any]) -> None:
            raise AssertionError("the backstop hands over records, not payloads")

        async def emit_record(self, record: Record, settlement: Settlement | None = None) -> str:
            if not self.up:
                raise ConnectionError("ledger down")
            self.got.append((record, settlement))
            return record.cid

    record = Record.build("FUNCTION_COMPLETED", {"success": True, "n": 1})
    settlement = Settlement("k", "holder", '{"success":true}', 60.0)
    down = Backstop(Refusing(up=False), tmp_path)
    assert asyncio.run(down.deliver(record, settlement)) is Delivery.SPOOLED
    down.close()  # its process is gone: the spool's lock with it
    (spooled,) = tmp_path.glob("spool-*.jsonl")
    spooled.rename(tmp_path / "spool-999999999.jsonl")
    client = Refusing(up=True)
    adopter = Backstop(client, tmp_path)
    assert asyncio.run(adopter.flush(force=True))
    assert client.got == [(record, settlement)]


def test_after_a_database_restart_holders_get_a_lease_to_renew(
    private_postgres: Callable[..., PostgresServer],
) -> None:
    """While the database was down no holder could renew: after it starts again a claim
    whose lease ended is not taken over until the database has been up for a lease."""
    database = private_postgres()
    uri = database.create_database()
    key = idempotency_key("f", "/crs", "cr-5")

    async def claim(store: IdempotencyStore) -> str:
        return (await store.claim(key, "fp")).status

    async def scenario() -> list[str]:
        holder = open_store(uri, min_lease_s=1.0)
        other = open_store(uri, min_lease_s=1.0)
        try:
            statuses = [await claim(holder)]
            await holder.aclose()  # stops renewing, as if cut off
            database.crash()
            time.sleep(1.5)  # the lease ends while the database is down
            database.start()
            statuses.append(await claim(other))  # the holder may still renew: not yet
            await asyncio.sleep(1.5)
            statuses.append(await claim(other))  # a whole lease since the restart
            return statuses
        finally:
            await other.aclose()

    assert asyncio.run(scenario()) == ["run", "in_progress", "run"]


def test_a_record_handed_over_again_is_stored_once(postgres_uri: str) -> None:
    """A commit cut off in one lane may have landed: the backstop hands the record over
    again, perhaps through the other lane (another log); it is stored once."""
    ledger = PostgresLedger(postgres_uri)
    record = Record.build("FUNCTION_COMPLETED", {"success": True, "n": 7})
    other = Record.build("FUNCTION_COMPLETED", {"success": True, "n": 8})

    async def scenario() -> None:
        await ledger.append_async([record], lane=0)
        await ledger.append_async([record, other], lane=1, dedupe=True)
        backstop = Backstop(AsyncLedgerChronicle(ledger), None)
        backstop._kept.append(record)  # kept after a failure that had committed after all
        assert await backstop.flush(force=True)

    try:
        asyncio.run(scenario())
        cids = [r.cid for r in ledger.records()]
    finally:
        ledger.close()
    assert sorted(cids) == sorted([record.cid, other.cid])


def test_a_replay_never_acknowledges_a_record_only_memory_holds(tmp_path: Path) -> None:
    """Pod A ran the function but could keep its COMPLETED record in memory only (ledger
    refusing, no spool): it keeps holding the claim, so a redelivery to pod B runs nothing
    and is not acknowledged (A may die before its record is anywhere durable); once A hands
    the record over, the claim is settled and B answers from it."""

    class Refusing(LedgerChronicle):
        refusing = True

        async def emit_record(self, record: Record, *args: Any, **kwargs: Any) -> str:
            if self.refusing and record.type == "FUNCTION_COMPLETED":
                raise ConnectionError("ledger refusing")
            return await super().emit_record(record, *args, **kwargs)

    def pod(client: Any) -> tuple[FunctionRuntime, list[Any]]:
        registry, calls = FunctionRegistry(), []

        def bill(event: Any, ctx: FunctionContext) -> Any:
            calls.append(event)
            return {"billed": 1}

        governed_function("f", trigger_events=["T"], idempotent=True, registry=registry)(bill)
        store = open_store(str(tmp_path / "idempotency.db"))
        return FunctionRuntime(registry, client, idempotency=store), calls

    ledger = Ledger(tmp_path / "chronicle.db")
    refusing = Refusing(ledger)
    a, a_calls = pod(refusing)
    b, b_calls = pod(LedgerChronicle(ledger))
    context = FunctionContext(event_id="cr-9", event_source="/crs")

    async def scenario() -> list[Any]:
        first = await a.invoke("f", {"cr": 9}, context)
        before = await b.invoke("f", {"cr": 9}, context)
        refusing.refusing = False
        assert a.backstop is not None and await a.backstop.flush(force=True)
        after = await b.invoke("f", {"cr": 9}, context)
        return [first, before, after]

    try:
        first, before, after = asyncio.run(scenario())
    finally:
        ledger.close()
    assert first.error_kind == "unavailable" and a_calls == [{"cr": 9}]
    assert before.error_kind == "in_progress" and b_calls == []  # A holds the claim
    assert after.success and after.replayed and b_calls == []
