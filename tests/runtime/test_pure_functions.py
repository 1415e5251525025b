"""A pure function (no effect beyond its result) has its FUNCTION_INVOKED record committed with
FUNCTION_COMPLETED, in one commit before the answer, instead of ahead of the handler; any
other function's FUNCTION_INVOKED is durable before its handler runs. Either way no answer
is acknowledged before both records are durable, and nothing is lost when the ledger fails."""

from __future__ import annotations

import asyncio
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from govfn import FunctionContext, FunctionRegistry, FunctionRuntime, governed_function
from govfn.chronicle import MemoryChronicle, Record
from govfn.chronicle.client import LedgerChronicle
from govfn.chronicle.sqlite.ledger import Ledger
from govfn.functions.echo import EchoFunction

SCHEMA = json.loads(files("govfn").joinpath("schemas/function-descriptor.schema.json").read_text())


class FailingChronicle(MemoryChronicle):
    """Refuses every record while `down`."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def emit_record(self, record: Record) -> str:
        if self.down:
            raise ConnectionError("chronicle down")
        return await super().emit_record(record)

    async def emit_records(self, records: list[Record]) -> None:
        for record in records:
            await self.emit_record(record)


def runtime_on(
    client: Any, *, pure: bool, seen: list[int] | None = None, **options: Any
) -> FunctionRuntime:
    """A runtime with one function `f`; when `seen` is given, the handler notes how many
    commits the ledger client had made when it ran."""
    registry = FunctionRegistry()

    async def handler(event: Any, context: FunctionContext) -> Any:
        if seen is not None:
            seen.append(client.commits)
        return event

    governed_function("f", trigger_events=["T"], pure=pure, registry=registry)(handler)
    return FunctionRuntime(registry, client, **options)


def stored(ledger: Ledger) -> list[Record]:
    return list(ledger.records())


@pytest.mark.parametrize(
    ("pure", "commits_before_handler", "commits"), [(True, 0, 1), (False, 1, 2)]
)
def test_when_invoked_is_committed(
    tmp_path: Path, pure: bool, commits_before_handler: int, commits: int
) -> None:
    ledger = Ledger(tmp_path / "chronicle.db")
    client = ledger.client()
    seen: list[int] = []
    runtime = runtime_on(client, pure=pure, seen=seen)
    result = asyncio.run(runtime.invoke("f", {"a": 1}, FunctionContext()))
    assert result.success and seen == [commits_before_handler] and client.commits == commits
    invoked, completed = stored(ledger)
    assert (invoked.type, completed.type) == ("FUNCTION_INVOKED", "FUNCTION_COMPLETED")
    assert completed.payload["invoked_cid"] == invoked.cid and result.lineage_cid == completed.cid
    ledger.close()


def test_pure_invocations_under_way_together_share_commits(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "chronicle.db")
    client = ledger.client()
    runtime = runtime_on(client, pure=True)

    async def sixteen() -> list[Any]:
        return await asyncio.gather(
            *(runtime.invoke("f", {"n": n}, FunctionContext()) for n in range(16))
        )

    results = asyncio.run(sixteen())
    assert all(result.success for result in results)
    assert client.commits == 1  # all 32 records in one group commit (async handlers)
    records = stored(ledger)
    assert len(records) == 32
    position = {record.cid: index for index, record in enumerate(records)}
    for result in results:
        completed = records[position[result.lineage_cid]]
        assert position[completed.payload["invoked_cid"]] < position[completed.cid]
    assert ledger.verify().ok
    ledger.close()


def test_a_pure_answer_nothing_holds_is_not_acknowledged_and_its_records_are_kept() -> None:
    """The handler ran (it changed nothing), but neither record is durable: the answer is
    UNAVAILABLE (the broker retries), and both records are handed over, in order, once the
    Chronicle takes records again."""
    chronicle = FailingChronicle()
    runtime = runtime_on(chronicle, pure=True)
    result = asyncio.run(runtime.invoke("f", {"a": 1}, FunctionContext()))
    assert result.error_kind == "unavailable" and result.lineage_cid is None
    assert runtime.backstop is not None and runtime.backstop.pending == 2
    chronicle.down = False
    assert asyncio.run(runtime.check()) and runtime.usable
    assert [record.type for record in chronicle.records] == [
        "FUNCTION_INVOKED",
        "FUNCTION_COMPLETED",
    ]


def test_pure_records_the_ledger_refuses_are_spooled_together(tmp_path: Path) -> None:
    chronicle = FailingChronicle()
    runtime = runtime_on(chronicle, pure=True, spool_dir=str(tmp_path / "spool"))
    result = asyncio.run(runtime.invoke("f", {"a": 1}, FunctionContext()))
    assert result.success and result.lineage_cid
    (spool,) = (tmp_path / "spool").glob("spool-*.jsonl")
    kept = [json.loads(line) for line in spool.read_text().splitlines()]
    assert [line["type"] for line in kept] == ["FUNCTION_INVOKED", "FUNCTION_COMPLETED"]


def test_a_ledger_client_commits_records_handed_together_in_order(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "chronicle.db")
    client = LedgerChronicle(ledger)
    first, second = Record.build("A", {"n": 1}), Record.build("B", {"n": 2})
    asyncio.run(client.emit_records((first, second)))
    assert [record.cid for record in stored(ledger)] == [first.cid, second.cid]
    assert client.commits == 1
    ledger.close()


def test_the_descriptor_says_pure_only_when_it_is() -> None:
    echo = EchoFunction().descriptor()
    assert echo["pure"] is True
    jsonschema.validate(echo, SCHEMA)
    registry = FunctionRegistry()
    governed_function("g", trigger_events=["T"], registry=registry)(lambda event, ctx: event)
    plain = registry.get("g")
    assert plain is not None and "pure" not in plain.descriptor()
    with pytest.raises(ValueError, match="pure must be True or False"):
        governed_function("h", trigger_events=["T"], pure="yes", registry=registry)(  # type: ignore[arg-type]
            lambda event, ctx: event
        )
