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
