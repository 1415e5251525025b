"""The receivers in-process: the reply contract, status mapping, routing, batch, overload."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable

import pytest

from govfn.app import GovfnApp
from govfn.cloudevents.encode import reply_id

from support.http_server import binary_headers
from support.http_wire import call_wsgi


def post(app: GovfnApp, path: str, headers: dict[str, str], body: object) -> object:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return call_wsgi(app, "POST", path, headers, data)


def test_success_with_data_answers_200_with_a_binary_reply_event(app: GovfnApp) -> None:
    headers = binary_headers(
        gsapcontextid="gsap-7", chroniclesessionid="sess-1", pipelinerunid="run-2", subject="s"
    )
    answer = post(app, "/functions/echo/events", headers, {"hello": "world"})
    assert answer.status == 200
    assert answer.json() == {"hello": "world"}
    h = answer.headers
    assert h["content-type"] == "application/json"
    assert h["ce-specversion"] == "1.0"
    assert h["ce-type"] == "ECHO_REPLIED"
    assert h["ce-source"] == "/govfn/functions/echo"
    assert h["ce-id"] == reply_id_for("/tests/http", "e-1", "echo")
    assert h["ce-lineagecid"].startswith("b")
    assert h["ce-gsapcontextid"] == "gsap-7"
    assert h["ce-chroniclesessionid"] == "sess-1"
    assert h["ce-pipelinerunid"] == "run-2"


def reply_id_for(source: str, event_id: str, function_id: str) -> str:
    from govfn.cloudevents.decode import IncomingEvent

    return reply_id(IncomingEvent({"source": source, "id": event_id}, None), function_id)


def test_a_redelivery_gets_the_same_reply_id_and_another_event_a_different_one(
    app: GovfnApp,
) -> None:
    first = post(app, "/functions/echo/events", binary_headers(event_id="a"), {"n": 1})
    again = post(app, "/functions/echo/events", binary_headers(event_id="a"), {"n": 1})
    other = post(app, "/functions/echo/events", binary_headers(event_id="b"), {"n": 1})
    assert first.headers["ce-id"] == again.headers["ce-id"] != other.headers["ce-id"]


def test_structured_mode_is_accepted(app: GovfnApp) -> None:
    event = {
        "specversion": "1.0",
        "id": "s-1",
        "source": "/tests",
        "type": "ECHO_REQUESTED",
        "data": [1, 2, 3],
        "gsapcontextid": "g",
    }
    answer = post(app, "/", {"content-type": "application/cloudevents+json"}, event)
    assert answer.status == 200
    assert answer.json() == [1, 2, 3]
    assert answer.headers["ce-gsapcontextid"] == "g"


def test_structured_data_base64_reaches_the_function_as_bytes(app: GovfnApp) -> None:
    event = {
        "specversion": "1.0",
        "id": "b-1",
        "source": "/tests",
        "type": "ECHO_REQUESTED",
        "data_base64": base64.b64encode(b"\x00\x01binary").decode(),
    }
    answer = post(app, "/", {"content-type": "application/cloudevents+json"}, event)
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.body == b"\x00\x01binary"


def test_percent_encoded_and_quoted_header_values_are_decoded(app: GovfnApp) -> None:
    headers = binary_headers("WHEREAMI_REQUESTED", subject="caf%c3%a9 %E2%82%AC", source='"/a\\"b"')
    answer = post(app, "/functions/whereami/events", headers, {})
    assert answer.status == 200, answer.body
    context = answer.json()["context"]
    assert context["event_subject"] == "café €"
    assert context["event_source"] == '/a"b'


def test_reply_headers_are_percent_encoded(app: GovfnApp) -> None:
    headers = binary_headers(gsapcontextid="g%C3%A9 x")
    answer = post(app, "/functions/echo/events", headers, {})
    assert answer.headers["ce-gsapcontextid"] == "g%C3%A9%20x"


def test_context_carries_the_event_attributes_and_traceparent(app: GovfnApp) -> None:
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = binary_headers(
        "WHEREAMI_REQUESTED",
        event_id="ctx-1",
        subject="sub",
        time="2026-01-02T03:04:05.123456789Z",
        gsapcontextid="g1",
        chroniclesessionid="c1",
        pipelinerunid="p1",
        traceparent=trace,
    )
    answer = post(app, "/functions/whereami/events", headers, {})
    assert answer.status == 200
    context = answer.json()["context"]
    assert context == {
        **context,
        "trigger_event_kind": "WHEREAMI_REQUESTED",
        "event_id": "ctx-1",
        "event_source": "/tests/http",
        "event_subject": "sub",
        "event_time": "2026-01-02T03:04:05.123456789Z",
        "gsap_context_id": "g1",
        "chronicle_session_id": "c1",
        "pipeline_run_id": "p1",
        "traceparent": trace,
    }
    assert context["invocation_id"]
    assert answer.headers["traceparent"] == trace


def test_success_without_reply_type_or_data_answers_202_empty(app: GovfnApp) -> None:
    answer = post(app, "/functions/sink/events", binary_headers("SINK_REQUESTED"), {})
    assert (answer.status, answer.body) == (202, b"")
    answer = post(app, "/functions/echo/events", binary_headers(), b"")
    assert (answer.status, answer.body) == (202, b"")


@pytest.mark.parametrize(
    ("function", "event_type", "data", "status", "retry_after"),
    [
        ("fail", "FAIL_REQUESTED", {}, 500, False),
        ("reject", "REJECT_REQUESTED", {}, 422, False),
        ("slow", "SLOW_REQUESTED", {"sleep": 5}, 504, False),
        ("outcome", "OUTCOME_REQUESTED", {"kind": "in_progress"}, 409, True),
        ("outcome", "OUTCOME_REQUESTED", {"kind": "conflict"}, 422, False),
        ("outcome", "OUTCOME_REQUESTED", {"kind": "permanent"}, 422, False),
        ("outcome", "OUTCOME_REQUESTED", {"kind": "mystery"}, 500, False),
    ],
)
def test_failures_map_to_the_delivery_contract(
    app: GovfnApp, function: str, event_type: str, data: object, status: int, retry_after: bool
) -> None:
    answer = post(app, f"/functions/{function}/events", binary_headers(event_type), data)
    assert answer.status == status
    problem = answer.problem
    assert problem["function_id"] == function
    assert problem["invocation_id"]
    assert ("retry-after" in answer.headers) is retry_after


def test_a_handler_error_never_leaks_its_text(app: GovfnApp) -> None:
    answer = post(app, "/functions/fail/events", binary_headers("FAIL_REQUESTED"), {})
    assert answer.status == 500
    assert b"secret-internal-detail" not in answer.body
    assert b"Traceback" not in answer.body and b"RuntimeError" not in answer.body


def test_permanent_error_says_why(app: GovfnApp) -> None:
    answer = post(app, "/functions/reject/events", binary_headers("REJECT_REQUESTED"), {})
    assert answer.problem["detail"] == "order total must be positive"


def test_sync_handlers_run_too(app: GovfnApp) -> None:
    answer = post(app, "/functions/upper/events", binary_headers("UPPER_REQUESTED"), "abc")
    assert (answer.status, answer.json()) == (200, "ABC")


def test_root_routes_by_type_and_fans_out_with_202(app: GovfnApp) -> None:
    answer = post(app, "/", binary_headers(), {"x": 1})
    assert answer.status == 200 and answer.headers["ce-source"] == "/govfn/functions/echo"
    answer = post(app, "/", binary_headers("FANOUT"), {})
    assert (answer.status, answer.body) == (202, b"")
    assert app.metrics.invocations("fan-a", "success") == 1
    assert app.metrics.invocations("fan-b", "success") == 1


def test_single_function_mode_root_is_that_function(make_app: Callable[..., GovfnApp]) -> None:
    app = make_app(function_id="echo")
    assert post(app, "/", binary_headers(), {"a": 1}).status == 200
    answer = post(app, "/", binary_headers("FANOUT"), {})
    assert answer.status == 400 and answer.problem["attribute"] == "type"
    answer = post(app, "/functions/upper/events", binary_headers("UPPER_REQUESTED"), "x")
    assert answer.status == 404


def test_billing_requires_gsap_and_bills_with_it(app: GovfnApp) -> None:
    data = {"customer_id": "cust-1", "quantity": 2}
    answer = post(app, "/", binary_headers("GSAP_CR_RECEIVED"), data)
    assert answer.status == 400 and answer.problem["attribute"] == "gsapcontextid"
    answer = post(app, "/", binary_headers("GSAP_CR_RECEIVED", gsapcontextid="g-1"), data)
    assert answer.status == 200
    # The reply is the usage event itself: a meter ingests it as is, deduplicating by id.
    assert answer.headers["ce-type"] == "BILLABLE_EVENT"
    assert answer.headers["ce-subject"] == "cust-1"
    assert answer.headers["ce-id"].startswith("bill-")
    assert answer.headers["ce-source"] == "/govfn/functions/billing"
    assert answer.headers["ce-lineagecid"].startswith("bagaaiera")
    body = answer.json()
    assert body["meter"] == "gsap_cr" and body["quantity"] == 2
    assert body["gsap_context_id"] == "g-1" and "specversion" not in body


def test_batch_replies_with_a_batch_of_structured_events(app: GovfnApp) -> None:
    events = [
        {"specversion": "1.0", "id": str(i), "source": "/b", "type": "ECHO_REQUESTED", "data": i}
        for i in range(3)
    ]
    events.append({"specversion": "1.0", "id": "s", "source": "/b", "type": "SINK_REQUESTED"})
    answer = post(app, "/", {"content-type": "application/cloudevents-batch+json"}, events)
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/cloudevents-batch+json"
    replies = answer.json()
    assert [reply["data"] for reply in replies] == [0, 1, 2]
    assert len({reply["id"] for reply in replies}) == 3
    assert all(reply["type"] == "ECHO_REPLIED" and reply["lineagecid"] for reply in replies)


def test_a_batch_with_one_invalid_element_runs_nothing(app: GovfnApp) -> None:
    events = [
        {"specversion": "1.0", "id": "1", "source": "/b", "type": "ECHO_REQUESTED", "data": 1},
        {
            "specversion": "1.0",
            "id": "2",
            "source": "/b",
            "type": "ECHO_REQUESTED",
            "data": 1,
            "data_base64": "AA==",
        },
    ]
    answer = post(app, "/", {"content-type": "application/cloudevents-batch+json"}, events)
    assert answer.status == 400
    assert answer.problem["attribute"] == "batch[1].data_base64"
    assert app.metrics.invocations("echo", "success") == 0


def test_a_batch_without_replies_answers_202(app: GovfnApp) -> None:
    events = [{"specversion": "1.0", "id": "s", "source": "/b", "type": "SINK_REQUESTED"}]
    answer = post(app, "/", {"content-type": "application/cloudevents-batch+json"}, events)
    assert (answer.status, answer.body) == (202, b"")
    answer = post(app, "/", {"content-type": "application/cloudevents-batch+json"}, [])
    assert (answer.status, answer.body) == (202, b"")


def test_body_limit_is_configurable(make_app: Callable[..., GovfnApp]) -> None:
    app = make_app(max_body_bytes=10)
    answer = post(app, "/", binary_headers(), b'{"a":"0123456789"}')
    assert answer.status == 413 and answer.problem["attribute"] == "content-length"
    assert post(app, "/", binary_headers(), b'{"a":1}').status == 200


def test_overload_answers_429_with_retry_after(make_app: Callable[..., GovfnApp]) -> None:
    app = make_app(max_in_flight=1, retry_after_s=3)
    answers: list[object] = []
    slow = threading.Thread(
        target=lambda: answers.append(
            post(app, "/", binary_headers("SLOW_REQUESTED"), {"sleep": 0.5})
        )
    )
    slow.start()
    try:
        for _ in range(200):  # wait (bounded) until the slow one holds the only slot
            if app.state.in_flight == 1:
                break
            threading.Event().wait(0.01)
        assert app.state.in_flight == 1
        answer = post(app, "/", binary_headers(), {})
        assert answer.status == 429
        assert answer.headers["retry-after"] == "3"
    finally:
        slow.join(5)
    assert answers[0].status == 200  # type: ignore[attr-defined]
    assert post(app, "/", binary_headers(), {}).status == 200


def test_draining_refuses_new_work_and_readiness_turns_false(app: GovfnApp) -> None:
    assert call_wsgi(app, "GET", "/health/readiness").status == 200
    app.state.begin_draining()
    readiness = call_wsgi(app, "GET", "/health/readiness")
    assert readiness.status == 503 and readiness.json()["draining"] is True
    answer = post(app, "/", binary_headers(), {})
    assert answer.status == 503 and "retry-after" in answer.headers
    assert call_wsgi(app, "GET", "/health/liveness").status == 200


def test_all_handlers_share_one_long_lived_loop(app: GovfnApp) -> None:
    seen = set()
    threads = []
    results: list[object] = []

    def send(i: int) -> None:
        results.append(post(app, "/", binary_headers("WHEREAMI_REQUESTED", event_id=str(i)), {}))

    for i in range(8):
        threads.append(threading.Thread(target=send, args=(i,)))
        threads[-1].start()
    for thread in threads:
        thread.join(10)
    for answer in results:
        assert answer.status == 200  # type: ignore[attr-defined]
        seen.add((answer.json()["loop"], answer.json()["thread"]))  # type: ignore[attr-defined]
    assert len(results) == 8
    assert len(seen) == 1
    assert next(iter(seen))[0] == id(app.loop.loop())


def test_metrics_count_invocations_by_outcome(app: GovfnApp) -> None:
    post(app, "/", binary_headers(), {})
    post(app, "/", binary_headers("FAIL_REQUESTED"), {})
    post(app, "/", binary_headers(specversion="0.3"), {})
    text = call_wsgi(app, "GET", "/metrics").body.decode()
    assert 'govfn_invocations_total{function="echo",outcome="success"} 1' in text
    assert 'govfn_invocations_total{function="fail",outcome="error"} 1' in text
    assert 'govfn_invocation_duration_seconds_count{function="echo"} 1' in text
    assert 'govfn_requests_rejected_total{status="400"} 1' in text
    assert "govfn_chronicle_emit_failures_total 0" in text


def test_integers_beyond_rfc8785_are_still_served(app: GovfnApp) -> None:
    answer = post(app, "/", binary_headers(), b'{"n": 18446744073709551616}')
    assert answer.status == 200  # addressed by the raw-codec CID of its JSON text
    assert answer.json() == {"n": 18446744073709551616}
    assert answer.headers["ce-lineagecid"].startswith("bagaaiera")


def test_the_request_timeout_caps_the_wait(make_app: Callable[..., GovfnApp]) -> None:
    app = make_app(request_timeout_s=0.1)
    answer = post(app, "/", binary_headers("SLOW_REQUESTED"), {"sleep": 0.6})
    assert answer.status == 504 and "0.1s" in answer.problem["detail"]
    assert app.state.in_flight == 0
    assert post(app, "/", binary_headers(), {}).status == 200
