"""Idempotent functions run once per trigger event, across deliveries and processes, on
both stores: a SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from govfn import FunctionContext, FunctionRegistry, FunctionRuntime, governed_function
from govfn.chronicle import MemoryChronicle
from govfn.idempotency import IdempotencyStore, idempotency_key, open_store

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the store lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "postgres":
        uri: str = request.getfixturevalue("postgres_uri")
        return uri
    return str(tmp_path / "idempotency.db")


@pytest.fixture
def run() -> Iterator[Run[Any]]:
    """One event loop for the whole test (a PostgreSQL store's pool lives on its loop)."""
    with asyncio.Runner() as runner:
        yield runner.run


@pytest.fixture
def stores(target: str, run: Run[Any]) -> Iterator[Callable[..., IdempotencyStore]]:
    """Open stores at `target`; each is closed on the test's loop afterwards."""
    opened: list[IdempotencyStore] = []

    def open_one(**options: Any) -> IdempotencyStore:
        opened.append(open_store(target, **options))
        return opened[-1]

    yield open_one
    for store in opened:
        run(store.aclose())


@pytest.fixture
def store(stores: Callable[..., IdempotencyStore]) -> IdempotencyStore:
    return stores()


def context(event_id: str = "e-1", source: str = "/src") -> FunctionContext:
    return FunctionContext(event_id=event_id, event_source=source)


def build(store: IdempotencyStore, handler: Any) -> tuple[FunctionRuntime, MemoryChronicle]:
    registry = FunctionRegistry()
    governed_function("once", trigger_events=["T"], idempotent=True, registry=registry)(handler)
    chronicle = MemoryChronicle()
    return FunctionRuntime(registry, chronicle, idempotency=store), chronicle


def test_redelivery_replays_the_stored_result(store: IdempotencyStore, run: Run[Any]) -> None:
    calls: list[Any] = []

    def handler(event: Any, ctx: FunctionContext) -> Any:
        calls.append(event)
        return {"n": len(calls)}

    runtime, chronicle = build(store, handler)

    async def scenario() -> list[Any]:
        return [await runtime.invoke("once", {"a": 1}, context()) for _ in range(3)]

    first, second, third = run(scenario())
    assert len(calls) == 1 and len(chronicle.records) == 2
    assert first.data == second.data == third.data == {"n": 1}
    assert not first.replayed and second.replayed and third.replayed
    assert second.lineage_cid == first.lineage_cid and second.output_cid() == first.output_cid()
    other = run(runtime.invoke("once", {"a": 1}, context("e-2")))
    assert other.data == {"n": 2}


def test_concurrent_duplicate_is_in_progress(store: IdempotencyStore, run: Run[Any]) -> None:
    async def scenario() -> tuple[Any, Any]:
        release = asyncio.Event()
        started = asyncio.Event()

        async def handler(event: Any, ctx: FunctionContext) -> Any:
            started.set()
            await asyncio.wait_for(release.wait(), 5)
            return "done"

        runtime, _ = build(store, handler)
        first = asyncio.create_task(runtime.invoke("once", {}, context()))
        await asyncio.wait_for(started.wait(), 10)
        duplicate = await runtime.invoke("once", {}, context())
        release.set()
        return await first, duplicate

    first, duplicate = run(scenario())
    assert first.success and duplicate.error_kind == "in_progress"


def test_same_key_different_payload_is_a_conflict(store: IdempotencyStore, run: Run[Any]) -> None:
    runtime, _ = build(store, lambda e, c: e)
    run(runtime.invoke("once", {"a": 1}, context()))
    clash = run(runtime.invoke("once", {"a": 2}, context()))
    assert not clash.success and clash.error_kind == "conflict"
    assert "different payload" in (clash.error or "")


def test_failure_releases_the_key(store: IdempotencyStore, run: Run[Any]) -> None:
    attempts: list[int] = []

    def handler(event: Any, ctx: FunctionContext) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("transient")
        return "ok"

    runtime, _ = build(store, handler)
    failed = run(runtime.invoke("once", {}, context()))
    retried = run(runtime.invoke("once", {}, context()))
    assert failed.error_kind == "error" and retried.success and len(attempts) == 2


def test_without_event_identity_it_simply_runs(store: IdempotencyStore, run: Run[Any]) -> None:
    calls: list[int] = []
    runtime, _ = build(store, lambda e, c: calls.append(1))
    for _ in range(2):
        run(runtime.invoke("once", {}, FunctionContext()))
    assert len(calls) == 2


def test_expired_results_and_stale_claims(
    stores: Callable[..., IdempotencyStore], run: Run[Any]
) -> None:
    store = stores(expiry_s=-1)  # results expire at once
    key = idempotency_key("f", "/s", "1")
    assert run(store.claim(key, "fp")).status == "run"
    run(store.complete(key, {"success": True}))
    assert run(store.claim(key, "fp")).status == "run"  # expired: runs again
    assert run(store.purge_expired()) == 0  # the new running claim holds its lease


def test_a_lapsed_lease_is_taken_over(
    stores: Callable[..., IdempotencyStore], run: Run[Any]
) -> None:
    """A holder that died (lease passed) loses its claim; its late outcome changes nothing."""
    first, second = stores(min_lease_s=0), stores()
    key = idempotency_key("f", "/s", "lease")
    assert run(first.claim(key, "fp")).status == "run"  # a lease over at once
    assert run(second.claim(key, "fp")).status == "run"
    run(second.complete(key, {"n": 2}))
    assert run(second.claim(key, "fp")) == ("replay", key, {"n": 2})
    run(first.release(key))  # the first holder, back from the dead, gives its claim up
    assert run(first.claim(key, "fp")) == ("replay", key, {"n": 2})


def _claim_many(target: str, keys: list[str], queue: Any) -> None:
    async def claims() -> list[str]:
        store = open_store(target)
        try:
            return [(await store.claim(k, "fp")).status for k in keys]
        finally:
            await store.aclose()

    queue.put(asyncio.run(claims()))


def test_two_processes_claim_each_key_once(target: str) -> None:
    keys = [idempotency_key("f", "/s", str(i)) for i in range(100)]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_claim_many, args=(target, keys, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    runs = [a == "run" or b == "run" for a, b in zip(*outcomes, strict=True)]
    both = [a == b == "run" for a, b in zip(*outcomes, strict=True)]
    assert all(runs) and not any(both)
