"""Typed event data on the real server: a dataclass (and a pydantic model, when pydantic is
importable) built from the data; data that does not fit answered 400 naming the field,
before any function runs and without a Chronicle record."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from govfn.outcome import KNATIVE_RETRIED_STATUSES

from support.http_server import Server, binary_headers, start_server, stop_server
from support.http_wire import Answer, raw_request

pytestmark = pytest.mark.slow
BATCH = "application/cloudevents-batch+json"
MODULES = ["--functions", "govfn.functions", "--functions", "support.typed_samples"]
ORDER = {
    "order_id": "o-1",
    "items": [{"sku": "a", "price": 2.5, "quantity": 2}, {"sku": "b", "price": 1}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("typed"), *MODULES, "--dev")
    yield running
    stop_server(running)


def post(server: Server, headers: dict[str, str], body: Any, path: str = "/") -> Answer:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw_request(server.port, "POST", path, list(headers.items()), payload)


def record_count(server: Server) -> int:
    with sqlite3.connect(server.ledger) as conn:
        count: int = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        return count


def event(event_id: str, data: Any, event_type: str = "ORDER_PLACED") -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": "/t", "type": event_type, "data": data}


def assert_refused(answer: Answer, attribute: str, field: str) -> dict[str, Any]:
    assert answer.status == 400, answer
    assert answer.status not in KNATIVE_RETRIED_STATUSES  # Knative dead-letters, never retries
    problem = answer.problem
    assert (problem["attribute"], problem["field"]) == (attribute, field)
    return problem


def test_the_handler_gets_an_instance_and_may_answer_with_one(server: Server) -> None:
    answer = post(server, binary_headers("ORDER_PLACED", "t-1"), ORDER)
    assert answer.status == 200, answer.body
    assert answer.headers["ce-type"] == "ORDER_PRICED"
    assert answer.json() == {"order_id": "o-1", "total": 6.0, "lines": 2}


def test_data_that_does_not_fit_is_400_naming_the_field_and_nothing_runs(server: Server) -> None:
    before = record_count(server)
    bad = {**ORDER, "items": [{"sku": "a", "price": "cheap"}]}
    problem = assert_refused(
        post(server, binary_headers("ORDER_PLACED", "t-2"), bad), "data", "items[0].price"
    )
    assert problem["detail"] == (
        "event data does not fit Order, the event type of function 'price': "
        "items[0].price: expected a number, got 'cheap'"
    )
    assert problem["function_id"] == "price"
    missing = post(server, binary_headers("ORDER_PLACED", "t-3"), {"items": []})
    assert_refused(missing, "data", "order_id")
    assert "order_id: is required" in missing.problem["detail"]
    not_an_object = post(server, binary_headers("ORDER_PLACED", "t-4"), [1, 2])
    assert_refused(not_an_object, "data", "")
    refused_by_post_init = post(
        server, binary_headers("ORDER_PLACED", "t-5"), {**ORDER, "order_id": "x"}
    )
    assert "does not start with 'o-'" in assert_refused(refused_by_post_init, "data", "")["detail"]
    assert record_count(server) == before  # no FUNCTION_INVOKED: the function never ran


def test_keys_the_type_does_not_name_are_ignored(server: Server) -> None:
    answer = post(server, binary_headers("ORDER_PLACED", "t-6"), {**ORDER, "channel": "web"})
    assert answer.status == 200 and answer.json()["lines"] == 2


def test_one_bad_element_refuses_the_whole_batch_before_anything_runs(server: Server) -> None:
    before = record_count(server)
    events = [
        event("b-1", ORDER),
        event("b-2", {"anything": True}, "ECHO_REQUESTED"),  # untyped: any data
        event("b-3", {**ORDER, "tags": {"k": 1}}),
    ]
    answer = post(server, {"content-type": BATCH}, events)
    assert_refused(answer, "batch[2].data", "tags.k")
    assert record_count(server) == before
    good = post(server, {"content-type": BATCH}, events[:2])
    assert good.status == 200
    assert [reply["data"] for reply in good.json()] == [
        {"order_id": "o-1", "total": 6.0, "lines": 2},
        {"anything": True},
    ]
    assert record_count(server) == before + 4  # INVOKED and COMPLETED of each


def test_the_invoke_api_refuses_it_too_through_the_runtime(server: Server) -> None:
    before = record_count(server)
    answer = post(
        server,
        {"content-type": "application/json"},
        {"event": {"order_id": "o-9", "items": "none"}},
        path="/functions/price/invoke",
    )
    assert answer.status == 400, answer.body
    assert "items: expected an array, got 'none'" in answer.json()["error"]
    assert record_count(server) == before


def test_the_descriptor_carries_the_json_schema(server: Server) -> None:
    descriptor = raw_request(server.port, "GET", "/functions/price", []).json()
    schema = descriptor["event_schema"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Order" and schema["required"] == ["order_id", "items"]
    assert schema["properties"]["items"] == {"type": "array", "items": {"$ref": "#/$defs/Item"}}
    assert schema["$defs"]["Item"]["properties"]["quantity"] == {"type": "integer", "default": 1}
    echo = raw_request(server.port, "GET", "/functions/echo", []).json()
    assert "event_schema" not in echo


pydantic_only = pytest.mark.skipif(
    importlib.util.find_spec("pydantic") is None, reason="pydantic is not installed"
)


@pydantic_only
def test_a_pydantic_model_is_built_and_answered(server: Server) -> None:
    answer = post(
        server, binary_headers("REFUND_REQUESTED", "p-1"), {"refund_id": "r", "amount": 3}
    )
    assert answer.status == 200, answer.body
    assert answer.json() == {"refund_id": "r", "amount": 3.0, "reason": "UNSPECIFIED"}


@pydantic_only
def test_a_pydantic_model_refuses_naming_the_field(server: Server) -> None:
    before = record_count(server)
    answer = post(
        server, binary_headers("REFUND_REQUESTED", "p-2"), {"refund_id": "r", "amount": -1}
    )
    problem = assert_refused(answer, "data", "amount")
    assert "greater than 0" in problem["detail"]
    assert record_count(server) == before
    schema = raw_request(server.port, "GET", "/functions/refund", []).json()["event_schema"]
    assert schema["properties"]["amount"]["exclusiveMinimum"] == 0
