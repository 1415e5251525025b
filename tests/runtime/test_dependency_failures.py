"""What a failing dependency makes of an invocation: never a run without a claim, never an
acknowledgement of records nothing holds (error_kind "unavailable", which the receivers
answer 503 with Retry-After), and `usable` false until the dependency answers again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from govfn import FunctionContext, FunctionRegistry, FunctionRuntime, governed_function
from govfn.chronicle import MemoryChronicle, Record
from govfn.idempotency import IdempotencyUnavailable, SqliteIdempotencyStore
from govfn.idempotency.postgres import PostgresIdempotencyStore

from support.postgres import free_port


class Chronicle(MemoryChronicle):
    """Refuses the record types in `refused` (all of them while `down`)."""

    def __init__(self, *, down: bool = False, refused: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.down = down
        self.refused = refused

    async def emit_record(self, record: Record) -> str:
        if self.down or record.type in self.refused:
            raise ConnectionError("chronicle down")
        return await super().emit_record(record)


def context(event_id: str = "e-1") -> FunctionContext:
    return FunctionContext(event_id=event_id, event_source="/src")


def runtime_with(
    chronicle: MemoryChronicle, calls: list[Any], *, idempotent: bool = False, **options: Any
) -> FunctionRuntime:
    registry = FunctionRegistry()

    def handler(event: Any, ctx: FunctionContext) -> Any:
        calls.append(event)
        return {"n": len(calls)}

    governed_function("f", trigger_events=["T"], idempotent=idempotent, registry=registry)(handler)
    return FunctionRuntime(registry, chronicle, **options)


def unreachable_store() -> PostgresIdempotencyStore:
    """A PostgreSQL store on a loopback port nobody listens on (with a password to hide)."""
    uri = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/govfn"
    return PostgresIdempotencyStore(uri, wait_s=0.2)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_unreachable_store_runs_nothing(backend: str) -> None:
    calls: list[Any] = []
    store = unreachable_store() if backend == "postgres" else SqliteIdempotencyStore("/proc/x/i.db")
    chronicle = MemoryChronicle()
    runtime = runtime_with(chronicle, calls, idempotent=True, idempotency=store)

    async def scenario() -> Any:
        try:
            return await runtime.invoke("f", {"a": 1}, context())
        finally:
            await store.aclose()

    result = asyncio.run(scenario())
    assert result.error_kind == "unavailable" and "retry later" in (result.error or "")
    assert calls == [] and chronicle.records == [] and result.lineage_cid is None


def test_the_store_error_names_the_server_and_never_the_password() -> None:
    store = unreachable_store()
    with pytest.raises(IdempotencyUnavailable) as raised:
        store.prepare()
    message = str(raised.value)
    assert f"database govfn on host 127.0.0.1:{urlsplit(store.uri).port}" in message
    assert "s3cret" not in message and "\n" not in message


def test_a_start_failure_keeps_the_runtime_unusable_until_the_store_answers(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the store's folder should be")
    store = SqliteIdempotencyStore(blocked / "idempotency.db")
    runtime = runtime_with(MemoryChronicle(), [], idempotent=True, idempotency=store)
    assert runtime.prepare() is False and not runtime.usable
    assert asyncio.run(runtime.check()) is False
    blocked.unlink()
    assert asyncio.run(runtime.check()) is True and runtime.usable
    store.close()


@pytest.mark.parametrize("spool", ["none", "unwritable"])
def test_records_nothing_holds_refuse_the_invocation(spool: str, tmp_path: Path) -> None:
    calls: list[Any] = []
    chronicle = Chronicle(down=True)
    spool_dir = None
    if spool == "unwritable":
        (tmp_path / "spool").write_text("a file where the spool folder should be")
        spool_dir = str(tmp_path / "spool")
    runtime = runtime_with(chronicle, calls, spool_dir=spool_dir)
    result = asyncio.run(runtime.invoke("f", {"a": 1}, context()))
    assert result.error_kind == "unavailable" and result.lineage_cid is None
    assert calls == []  # the handler did not run: nothing could record that it did
    assert runtime.backstop is not None and runtime.backstop.pending == 0  # withdrawn
    assert not runtime.usable
    chronicle.down = False
    assert asyncio.run(runtime.check()) and runtime.usable
    again = asyncio.run(runtime.invoke("f", {"a": 1}, context()))
    assert again.success and calls == [{"a": 1}] and len(chronicle.records) == 2


def test_a_spooled_record_is_durable_enough(tmp_path: Path) -> None:
    calls: list[Any] = []
    runtime = runtime_with(Chronicle(down=True), calls, spool_dir=str(tmp_path / "spool"))
    result = asyncio.run(runtime.invoke("f", {"a": 1}, context()))
    assert result.success and result.lineage_cid and calls == [{"a": 1}]
    assert runtime.usable and len(list((tmp_path / "spool").glob("spool-*.jsonl"))) == 1


def test_an_idempotent_completion_nothing_holds_is_stored_but_not_acknowledged(
    tmp_path: Path,
) -> None:
    """The handler ran (its INVOKED record is held); its COMPLETED record is not. The delivery
    is not acknowledged, but the result is stored: the broker's retry replays it instead of
    billing again."""
    calls: list[Any] = []
    store = SqliteIdempotencyStore(tmp_path / "idempotency.db")
    chronicle = Chronicle(refused=("FUNCTION_COMPLETED",))
    runtime = runtime_with(chronicle, calls, idempotent=True, idempotency=store)
    first = asyncio.run(runtime.invoke("f", {"a": 1}, context()))
    assert first.error_kind == "unavailable" and calls == [{"a": 1}]
    chronicle.refused = ()
    retry = asyncio.run(runtime.invoke("f", {"a": 1}, context()))
    assert retry.success and retry.replayed and calls == [{"a": 1}]
    assert asyncio.run(runtime.flush())  # the kept COMPLETED record reaches the Chronicle
    assert [r.type for r in chronicle.records] == ["FUNCTION_INVOKED", "FUNCTION_COMPLETED"]
    assert chronicle.records[1].cid == retry.lineage_cid
    store.close()
