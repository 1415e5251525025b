"""Every record fits a transparency-log entry (at most 65,535 bytes): the receiver refuses
attributes a record would keep past 1,024 characters, and an error's text is cut."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from govfn import FunctionContext, FunctionRegistry, FunctionRuntime, governed_function
from govfn.app import GovfnApp
from govfn.chronicle import MemoryChronicle
from govfn.chronicle.records import MAX_ERROR_CHARS
from govfn.cloudevents.decode import MAX_RECORDED_CHARS, RECORDED
from govfn.errors import PermanentError

from support.http_server import binary_headers
from support.http_wire import call_wsgi

ENTRY_LIMIT = 65_535


@pytest.mark.parametrize("attribute", RECORDED)
def test_an_oversized_recorded_attribute_is_refused_400(app: GovfnApp, attribute: str) -> None:
    long = "x" * (MAX_RECORDED_CHARS + 1)
    headers = binary_headers()
    headers[f"ce-{attribute}"] = long
    answer = call_wsgi(app, "POST", "/functions/echo/events", headers, b"{}")
    assert answer.status == 400
    assert (
        answer.json()["attribute"] == attribute
        and "over 1024 characters" in answer.json()["detail"]
    )


def test_a_structured_event_with_a_70000_character_id_is_refused(app: GovfnApp) -> None:
    event = {"specversion": "1.0", "id": "i" * 70_000, "source": "/s", "type": "ECHO_REQUESTED"}
    headers = {"content-type": "application/cloudevents+json"}
    answer = call_wsgi(app, "POST", "/functions/echo/events", headers, json.dumps(event).encode())
    assert answer.status == 400 and answer.json()["attribute"] == "id"


def test_the_largest_accepted_attributes_and_a_huge_error_make_records_that_fit() -> None:
    registry = FunctionRegistry()

    @governed_function("loud", trigger_events=["T"], registry=registry)
    def loud(event: Any, context: FunctionContext) -> Any:
        raise PermanentError("é" * 200_000)

    chronicle = MemoryChronicle()
    runtime = FunctionRuntime(registry, chronicle)
    most = "€" * MAX_RECORDED_CHARS  # three bytes a character in UTF-8
    context = FunctionContext(
        trigger_event_kind=most, event_id=most, event_source=most, gsap_context_id=most,
        chronicle_session_id=most, pipeline_run_id=most, traceparent="t" * 8190,
        sender_issuer="https://issuer", sender_subject="s" * 6144,
    )  # fmt: skip
    result = asyncio.run(runtime.invoke("loud", {"a": 1}, context))
    assert not result.success
    invoked, completed = chronicle.records
    assert all(len(record.canonical) <= ENTRY_LIMIT for record in chronicle.records)
    assert len(completed.payload["error"]) == MAX_ERROR_CHARS and invoked.payload["sender"]
