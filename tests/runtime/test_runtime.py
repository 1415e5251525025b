"""FunctionRuntime: every invariant of DESIGN.md, against a real ledger where it matters."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from govfn import (
    FunctionContext,
    FunctionRegistry,
    FunctionResult,
    FunctionRuntime,
    PermanentError,
    governed_function,
)
from govfn.chronicle import Ledger, LedgerChronicle, MemoryChronicle, Record, cid_of


class FlakyChronicle(MemoryChronicle):
    """Raises for the first `failures` calls, then stores."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def emit_record(self, record: Record) -> str:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("chronicle down")
        return await super().emit_record(record)


@pytest.fixture
def registry() -> FunctionRegistry:
    return FunctionRegistry()


@pytest.fixture
def chronicle() -> MemoryChronicle:
    return MemoryChronicle()


@pytest.fixture
def runtime(registry: FunctionRegistry, chronicle: MemoryChronicle) -> FunctionRuntime:
    return FunctionRuntime(registry, chronicle)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def payloads(chronicle: MemoryChronicle) -> list[dict[str, Any]]:
    return [r.payload for r in chronicle.records]


def test_unknown_function_fails_without_records(runtime: FunctionRuntime, chronicle) -> None:
    result = run(runtime.invoke("nope", {}))
    assert not result.success
    assert result.error == "Unknown function: nope"
    assert result.error_kind == "unknown_function"
    assert chronicle.records == []


def test_missing_gsap_context_fails_without_executing(registry, runtime, chronicle) -> None:
    calls: list[object] = []

    @governed_function("governed", trigger_events=["T"], gsap_required=True, registry=registry)
    def governed(event: Any, context: FunctionContext) -> Any:
        calls.append(event)
        return event

    result = run(runtime.invoke("governed", {"x": 1}))
    assert not result.success and result.error_kind == "gsap_required"
    assert "gsapcontextid" in (result.error or "")
    assert calls == [] and chronicle.records == []
    ok = run(runtime.invoke("governed", {"x": 1}, FunctionContext(gsap_context_id="g-1")))
    assert ok.success and calls == [{"x": 1}]


def test_invoked_before_completed_after_with_lineage(registry, runtime, chronicle) -> None:
    seen_during_handler: list[list[str]] = []

    @governed_function("probe", trigger_events=["T"], emits=["R"], registry=registry)
    async def probe(event: Any, context: FunctionContext) -> Any:
        seen_during_handler.append([r.type for r in chronicle.records])
        return {"echo": event, "invocation": context.invocation_id}

    context = FunctionContext(trigger_event_kind="T", gsap_context_id="g", event_id="e-1")
    result = run(runtime.invoke("probe", {"a": 1}, context))
    assert result.success and result.reply_type == "R"
    assert seen_during_handler == [["FUNCTION_INVOKED"]]
    invoked, completed = payloads(chronicle)
    assert invoked["event_code"] == "0x2A01" and completed["event_code"] == "0x2A02"
    assert invoked["invocation_id"] == completed["invocation_id"] == result.invocation_id
    assert result.data["invocation"] == result.invocation_id
    assert invoked["input_cid"] == cid_of({"a": 1}) == invoked["trigger_event_cid"]
    assert invoked["gsap_context_id"] == "g" and invoked["event_id"] == "e-1"
    assert completed["success"] is True
    assert completed["output_cid"] == result.output_cid() == cid_of(result.data)
    assert completed["duration_ms"] == result.duration_ms >= 0
    assert completed["invoked_cid"] == chronicle.records[0].cid
    assert result.lineage_cid == chronicle.records[1].cid == cid_of(completed)


def test_trigger_cid_from_context_is_linked(registry, runtime, chronicle) -> None:
    governed_function("f", trigger_events=["T"], registry=registry)(lambda e, c: None)
    run(runtime.invoke("f", {}, FunctionContext(trigger_event_cid="bagaaieraexample")))
    assert {p["trigger_event_cid"] for p in payloads(chronicle)} == {"bagaaieraexample"}


@pytest.mark.parametrize(
    ("exception", "kind"),
    [(RuntimeError("boom"), "error"), (PermanentError("bad input"), "permanent")],
)
def test_handler_exception_is_a_failed_result_with_completed(
    registry, runtime, chronicle, exception: Exception, kind: str
) -> None:
    @governed_function("raiser", trigger_events=["T"], registry=registry)
    def raiser(event: Any, context: FunctionContext) -> Any:
        raise exception

    result = run(runtime.invoke("raiser", {}))
    assert not result.success and result.error_kind == kind
    assert str(exception) in (result.error or "")
    completed = payloads(chronicle)[1]
    assert completed["success"] is False and completed["error_kind"] == kind
    assert completed["output_cid"] is None and result.lineage_cid == chronicle.records[1].cid


def test_timeout_is_a_failed_result_with_completed(registry, runtime, chronicle) -> None:
    @governed_function("slow", trigger_events=["T"], timeout=0.05, registry=registry)
    async def slow(event: Any, context: FunctionContext) -> Any:
        await asyncio.sleep(5)

    result = run(runtime.invoke("slow", {}))
    assert not result.success and result.error == "timeout" and result.error_kind == "timeout"
    assert payloads(chronicle)[1]["error"] == "timeout"


def test_non_json_result_is_a_failure(registry, runtime, chronicle) -> None:
    governed_function("odd", trigger_events=["T"], registry=registry)(lambda e, c: object())
    result = run(runtime.invoke("odd", {}))
    assert not result.success and "not JSON" in (result.error or "")
    assert payloads(chronicle)[1]["success"] is False


def test_handler_may_return_a_function_result(registry, runtime) -> None:
    @governed_function("explicit", trigger_events=["T"], registry=registry)
    def explicit(event: Any, context: FunctionContext) -> FunctionResult:
        return FunctionResult(success=False, error="declined")

    result = run(runtime.invoke("explicit", {}))
    assert not result.success and result.error == "declined" and result.error_kind == "error"


def test_chronicle_disabled_records_nothing(registry, runtime, chronicle) -> None:
    governed_function("quiet", trigger_events=["T"], chronicle_enabled=False, registry=registry)(
        lambda e, c: e
    )
    result = run(runtime.invoke("quiet", {"a": 1}))
    assert result.success and result.lineage_cid is None and chronicle.records == []


def test_failing_chronicle_never_breaks_nor_loses(registry, tmp_path) -> None:
    flaky = FlakyChronicle(failures=2)
    runtime = FunctionRuntime(registry, flaky, spool_dir=str(tmp_path / "spool"))
    governed_function("f", trigger_events=["T"], registry=registry)(lambda e, c: e)

    async def scenario() -> list[FunctionResult]:
        first = await runtime.invoke("f", {"n": 1})  # both records fail, kept
        assert runtime.backstop is not None and runtime.backstop.pending == 2
        assert list((tmp_path / "spool").glob("spool-*.jsonl"))
        await asyncio.sleep(0.06)  # past the first retry delay
        second = await runtime.invoke("f", {"n": 2})
        assert await runtime.flush()
        return [first, second]

    first, second = run(scenario())
    assert first.success and second.success
    cids = [r.cid for r in flaky.records]
    assert len(cids) == 4 == len(set(cids))
    assert cids[1] == first.lineage_cid and cids[3] == second.lineage_cid  # order kept
    assert runtime.backstop is not None and runtime.backstop.failures == 2
    assert not list((tmp_path / "spool").glob("spool-*.jsonl"))  # spool cleared


def test_dispatch_runs_every_match_concurrently(registry, runtime, chronicle) -> None:
    barrier_hits: list[str] = []

    async def scenario() -> list[FunctionResult]:
        barrier = asyncio.Barrier(2)

        for name in ("left", "right"):

            async def handler(event: Any, context: FunctionContext, name: str = name) -> Any:
                await asyncio.wait_for(barrier.wait(), 5)  # deadlocks unless concurrent
                barrier_hits.append(name)
                return {"by": name, "invocation": context.invocation_id}

            governed_function(name, trigger_events=["SHARED"], registry=registry)(handler)
        governed_function("other", trigger_events=["ELSE"], registry=registry)(lambda e, c: 1)
        return await runtime.dispatch("SHARED", {"x": 1}, trigger_cid="bagaaieratrigger")

    results = run(scenario())
    assert sorted(r.function_id for r in results) == ["left", "right"]
    assert all(r.success for r in results) and sorted(barrier_hits) == ["left", "right"]
    assert len({r.invocation_id for r in results}) == 2
    assert {p["trigger_event_cid"] for p in payloads(chronicle)} == {"bagaaieratrigger"}
    assert {p["trigger_event_kind"] for p in payloads(chronicle) if "trigger_event_kind" in p} == {
        "SHARED"
    }


def test_sync_handlers_do_not_block_the_loop(registry, runtime) -> None:
    released = threading.Event()

    @governed_function("blocking", trigger_events=["T"], registry=registry)
    def blocking(event: Any, context: FunctionContext) -> Any:
        return released.wait(timeout=5)  # only the event loop can set it

    async def scenario() -> FunctionResult:
        task = asyncio.create_task(runtime.invoke("blocking", {}))
        await asyncio.sleep(0.01)
        released.set()
        return await task

    assert run(scenario()).data is True


def test_with_the_real_ledger(registry, tmp_path) -> None:
    ledger = Ledger(tmp_path / "c.db")
    runtime = FunctionRuntime(registry, LedgerChronicle(ledger))
    governed_function("f", trigger_events=["T"], registry=registry)(lambda e, c: e)

    async def twenty() -> list[FunctionResult]:
        return list(await asyncio.gather(*(runtime.invoke("f", {"i": i}) for i in range(20))))

    results = run(twenty())
    assert len(ledger) == 40 and ledger.verify().ok
    assert {r.lineage_cid for r in results} <= {rec.cid for rec in ledger.records()}
    ledger.close()


def test_a_cancelled_invocation_still_records_its_completion(registry, runtime, chronicle) -> None:
    @governed_function("stuck", trigger_events=["T"], registry=registry)
    async def stuck(event: Any, context: FunctionContext) -> Any:
        await asyncio.sleep(5)

    async def scenario() -> None:
        task = asyncio.create_task(runtime.invoke("stuck", {}))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    invoked, completed = payloads(chronicle)
    assert invoked["event_code"] == "0x2A01" and completed["event_code"] == "0x2A02"
    assert completed["invoked_cid"] == chronicle.records[0].cid
    assert completed["success"] is False and completed["error"] == "cancelled"
    assert completed["error_kind"] == "cancelled"  # its own kind, not a timeout


def test_invocation_ids_are_version_4_uuids() -> None:
    import uuid

    from govfn.runtime import new_invocation_id

    ids = {new_invocation_id() for _ in range(1000)}
    assert len(ids) == 1000
    for text in list(ids)[:50]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_a_forked_child_draws_invocation_ids_of_its_own() -> None:
    import os

    from govfn.runtime import new_invocation_id

    new_invocation_id()  # random bytes for the next ids are drawn now, before the fork
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(writing, "".join(new_invocation_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    with os.fdopen(reading) as pipe:
        text = pipe.read()
    childs = {text[i : i + 36] for i in range(0, len(text), 36)}
    parents = {new_invocation_id() for _ in range(10)}
    assert len(childs) == 10 and not childs & parents


def test_the_runtime_answers_with_a_result_of_its_own_built_once(registry, runtime) -> None:
    import dataclasses

    returned = FunctionResult(success=True, data={"n": 1})

    @governed_function("plain", trigger_events=["T"], emits=["R"], registry=registry)
    def plain(event: Any, context: FunctionContext) -> Any:
        return returned

    result = run(runtime.invoke("plain", {}))
    assert result is not returned and returned.function_id is None  # the handler's is untouched
    assert result.function_id == "plain" and result.reply_type == "R" and result.invocation_id
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.data = None  # type: ignore[misc]


def test_a_kind_given_as_text_becomes_the_errorkind(registry, runtime, chronicle) -> None:
    from govfn.outcome import ErrorKind

    @governed_function("declines", trigger_events=["T"], registry=registry)
    def declines(event: Any, context: FunctionContext) -> Any:
        return FunctionResult(success=False, error="no", error_kind="permanent")  # type: ignore[arg-type]

    result = run(runtime.invoke("declines", {}))
    assert result.error_kind is ErrorKind.PERMANENT
    assert payloads(chronicle)[1]["error_kind"] == "permanent"
