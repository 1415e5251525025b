"""BillingProcessor: one OpenMeter-ready usage event per trigger event, never billed twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from govfn import FunctionContext, FunctionRegistry, FunctionRuntime
from govfn.chronicle import MemoryChronicle, cid_of
from govfn.functions import BillingProcessor


def bill(data: Any, **context: str) -> Any:
    registry = FunctionRegistry()
    registry.register(BillingProcessor())
    runtime = FunctionRuntime(registry, MemoryChronicle())
    fields = {"gsap_context_id": "gsap-1", "event_id": "cr-1", "event_source": "/crs"} | context
    return asyncio.run(runtime.invoke("billing", data, FunctionContext(**fields)))


def test_billable_event_shape() -> None:
    result = bill(
        {"customer_id": "acme", "quantity": 3},
        event_time="2026-11-26T00:00:00Z",
        trigger_event_cid="bagaaieralineage",
    )
    assert result.success and result.reply_type == "BILLABLE_EVENT"
    event = result.data
    assert event["specversion"] == "1.0" and event["type"] == "BILLABLE_EVENT"
    assert event["subject"] == "acme" and event["time"] == "2026-11-26T00:00:00Z"
    assert event["source"] == "/govfn/functions/billing"
    assert event["data"] == {
        "meter": "gsap_cr",
        "quantity": 3,
        "chronicle_cid": "bagaaieralineage",
        "input_cid": cid_of({"customer_id": "acme", "quantity": 3}),
        "gsap_context_id": "gsap-1",
        "function": "billing",
        "version": "1.0.0",
    }


def test_id_depends_only_on_the_trigger_event() -> None:
    first = bill({"customer_id": "acme"})
    redelivered = bill({"customer_id": "acme"})
    other_id = bill({"customer_id": "acme"}, event_id="cr-2")
    other_source = bill({"customer_id": "acme"}, event_source="/elsewhere")
    assert first.data["id"] == redelivered.data["id"]
    assert len({first.data["id"], other_id.data["id"], other_source.data["id"]}) == 3


def test_subject_is_the_fallback_customer() -> None:
    assert bill({}, event_subject="globex").data["subject"] == "globex"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "no customer"),
        ({"customer_id": ""}, "no customer"),
        ([1, 2], "JSON object"),
        ({"customer_id": "a", "quantity": 0}, "positive"),
        ({"customer_id": "a", "quantity": "3"}, "positive"),
    ],
)
def test_refused_crs_are_never_billed(data: Any, message: str) -> None:
    result = bill(data)
    assert not result.success and result.error_kind == "permanent"
    assert message in (result.error or "") and result.data is None


def test_gsap_context_is_required() -> None:
    result = bill({"customer_id": "acme"}, gsap_context_id="")
    assert not result.success and result.error_kind == "gsap_required"
