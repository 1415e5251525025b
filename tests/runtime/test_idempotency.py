"""Idempotent functions run once per trigger event, across deliveries and processes."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from govfn import FunctionContext, FunctionRegistry, FunctionRuntime, governed_function
from govfn.chronicle import MemoryChronicle
from govfn.idempotency import IdempotencyStore, idempotency_key


@pytest.fixture
def store(tmp_path: Path) -> Any:
    store = IdempotencyStore(tmp_path / "idempotency.db")
    yield store
    store.close()


def context(event_id: str = "e-1", source: str = "/src") -> FunctionContext:
    return FunctionContext(event_id=event_id, event_source=source)


def build(store: IdempotencyStore, handler: Any) -> tuple[FunctionRuntime, MemoryChronicle]:
    registry = FunctionRegistry()
    governed_function("once", trigger_events=["T"], idempotent=True, registry=registry)(handler)
    chronicle = MemoryChronicle()
    return FunctionRuntime(registry, chronicle, idempotency=store), chronicle


def test_redelivery_replays_the_stored_result(store: IdempotencyStore) -> None:
    calls: list[Any] = []

    def handler(event: Any, ctx: FunctionContext) -> Any:
        calls.append(event)
        return {"n": len(calls)}

    runtime, chronicle = build(store, handler)

    async def scenario() -> list[Any]:
        return [await runtime.invoke("once", {"a": 1}, context()) for _ in range(3)]

    first, second, third = asyncio.run(scenario())
    assert len(calls) == 1 and len(chronicle.records) == 2
    assert first.data == second.data == third.data == {"n": 1}
    assert not first.replayed and second.replayed and third.replayed
    assert second.lineage_cid == first.lineage_cid and second.output_cid() == first.output_cid()
    other = asyncio.run(runtime.invoke("once", {"a": 1}, context("e-2")))
    assert other.data == {"n": 2}


def test_concurrent_duplicate_is_in_progress(store: IdempotencyStore) -> None:
    async def scenario() -> tuple[Any, Any]:
        release = asyncio.Event()

        async def handler(event: Any, ctx: FunctionContext) -> Any:
            await asyncio.wait_for(release.wait(), 5)
            return "done"

        runtime, _ = build(store, handler)
        first = asyncio.create_task(runtime.invoke("once", {}, context()))
        await asyncio.sleep(0.01)
        duplicate = await runtime.invoke("once", {}, context())
        release.set()
        return await first, duplicate

    first, duplicate = asyncio.run(scenario())
    assert first.success and duplicate.error_kind == "in_progress"


def test_same_key_different_payload_is_a_conflict(store: IdempotencyStore) -> None:
    runtime, _ = build(store, lambda e, c: e)
    asyncio.run(runtime.invoke("once", {"a": 1}, context()))
    clash = asyncio.run(runtime.invoke("once", {"a": 2}, context()))
    assert not clash.success and clash.error_kind == "conflict"
    assert "different payload" in (clash.error or "")


def test_failure_releases_the_key(store: IdempotencyStore) -> None:
    attempts: list[int] = []

    def handler(event: Any, ctx: FunctionContext) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("transient")
        return "ok"

    runtime, _ = build(store, handler)
    failed = asyncio.run(runtime.invoke("once", {}, context()))
    retried = asyncio.run(runtime.invoke("once", {}, context()))
    assert failed.error_kind == "error" and retried.success and len(attempts) == 2


def test_without_event_identity_it_simply_runs(store: IdempotencyStore) -> None:
    calls: list[int] = []
    runtime, _ = build(store, lambda e, c: calls.append(1))
    for _ in range(2):
        asyncio.run(runtime.invoke("once", {}, FunctionContext()))
    assert len(calls) == 2


def test_expired_results_and_stale_claims(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path / "i.db", expiry_s=-1)  # results expire at once
    key = idempotency_key("f", "/s", "1")
    assert store.claim(key, "fp").status == "run"
    store.complete(key, {"success": True})
    assert store.claim(key, "fp").status == "run"  # expired: runs again
    assert store.purge_expired() == 0  # the new running claim holds its lease
    store.close()


def _claim_many(path: str, keys: list[str], queue: Any) -> None:
    store = IdempotencyStore(path)
    queue.put([store.claim(k, "fp").status for k in keys])
    store.close()


def test_two_processes_claim_each_key_once(tmp_path: Path) -> None:
    keys = [idempotency_key("f", "/s", str(i)) for i in range(100)]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [
        ctx.Process(target=_claim_many, args=(str(tmp_path / "i.db"), keys, queue))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    outcomes = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    runs = [a == "run" or b == "run" for a, b in zip(*outcomes, strict=True)]
    both = [a == b == "run" for a, b in zip(*outcomes, strict=True)]
    assert all(runs) and not any(both)
