"""The output CID in FUNCTION_COMPLETED names the data a handler returned, as returned."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from govfn import FunctionContext, FunctionRegistry, FunctionRuntime, governed_function
from govfn.chronicle.cid import content_cid
from govfn.chronicle.sqlite.ledger import Ledger


def test_an_event_changed_in_place_and_returned_is_named_as_returned(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "chronicle.db")
    registry = FunctionRegistry()

    async def stamp(event: Any, context: FunctionContext) -> Any:
        event["stamped"] = True
        return event

    governed_function("stamp", trigger_events=["T"], registry=registry)(stamp)
    runtime = FunctionRuntime(registry, ledger.client())
    result = asyncio.run(runtime.invoke("stamp", {"a": 1}, FunctionContext()))
    invoked, completed = list(ledger.records())
    assert invoked.payload["input_cid"] == content_cid({"a": 1})
    assert completed.payload["output_cid"] == content_cid({"a": 1, "stamped": True})
    assert result.output_cid() == completed.payload["output_cid"]
    ledger.close()


def test_an_event_returned_unchanged_keeps_its_cid_and_a_nan_put_in_place_is_refused(
    tmp_path: Path,
) -> None:
    """orjson writes NaN as null, as it writes None: an event holding null is named again
    from its canonical form, so a NaN put where a null was is still found to be no JSON."""
    ledger = Ledger(tmp_path / "chronicle.db")
    registry = FunctionRegistry()

    async def same(event: Any, context: FunctionContext) -> Any:
        if "spoil" in event:
            event["spoil"] = float("nan")
        return event

    governed_function("same", trigger_events=["T"], registry=registry)(same)
    runtime = FunctionRuntime(registry, ledger.client())
    kept = asyncio.run(runtime.invoke("same", {"a": [1, 2.5, "x"]}, FunctionContext()))
    assert kept.success and kept.output_cid() == content_cid({"a": [1, 2.5, "x"]})
    spoiled = asyncio.run(runtime.invoke("same", {"spoil": None}, FunctionContext()))
    assert not spoiled.success and "not JSON" in (spoiled.error or "")
    ledger.close()
