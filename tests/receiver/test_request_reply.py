"""Knative Eventing's RequestReply on the real server: a trigger event's `correlationid`
extension comes back as the reply's `replyid`, in binary, structured and batch mode."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.http_server import Server, binary_headers
from support.http_wire import Answer, raw_request

pytestmark = pytest.mark.slow
# RequestReply's correlation ids are an event id and a signature; one that needs
# percent-encoding in a header shows the value travels unchanged.
CORRELATION = "8f1c2a3e-0b9d-4c4e-9d5f-1a2b3c4d5e6f:c2lnbmF0dXJl%"
IN_A_HEADER = CORRELATION.replace("%", "%25")  # as the HTTP binding writes it
BATCH = "application/cloudevents-batch+json"


def post(server: Server, headers: dict[str, str], body: bytes) -> Answer:
    return raw_request(server.port, "POST", "/", list(headers.items()), body)


def structured(event_id: str, event_type: str = "ECHO_REQUESTED", **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/tests/request-reply",
        "type": event_type,
        "data": {"n": event_id},
        **extra,
    }


def test_a_binary_request_gets_its_correlation_id_back_as_replyid(server: Server) -> None:
    answer = post(server, binary_headers(event_id="rr-1", correlationid=IN_A_HEADER), b"{}")
    assert answer.status == 200
    assert answer.headers["ce-replyid"] == IN_A_HEADER
    assert "ce-correlationid" not in answer.headers  # the request's attribute is not echoed


def test_a_request_without_a_correlation_id_gets_no_replyid(server: Server) -> None:
    answer = post(server, binary_headers(event_id="rr-2"), b"{}")
    assert answer.status == 200
    assert "ce-replyid" not in answer.headers


def test_a_structured_request_gets_a_binary_reply_with_replyid(server: Server) -> None:
    event = structured("rr-3", correlationid=CORRELATION)
    answer = post(
        server, {"content-type": "application/cloudevents+json"}, json.dumps(event).encode()
    )
    assert answer.status == 200
    assert answer.headers["ce-replyid"] == IN_A_HEADER
    assert answer.json() == {"n": "rr-3"}


def test_each_batch_reply_carries_its_own_request_s_correlation_id(server: Server) -> None:
    events = [
        structured("rr-4", correlationid="first:sig"),
        structured("rr-5"),
        structured("rr-6", correlationid=CORRELATION),
    ]
    answer = post(server, {"content-type": BATCH}, json.dumps(events).encode())
    assert answer.status == 200
    replies = {reply["data"]["n"]: reply for reply in answer.json()}
    assert replies["rr-4"]["replyid"] == "first:sig"
    assert "replyid" not in replies["rr-5"]
    assert replies["rr-6"]["replyid"] == CORRELATION  # JSON: no percent-encoding


def test_a_reply_that_is_itself_an_event_still_gets_replyid(server: Server) -> None:
    """billing replies with the usage event it built (reply_is_event): its own id and
    source, and the request's correlation id as replyid."""
    headers = binary_headers(
        "GSAP_CR_RECEIVED", "rr-7", gsapcontextid="g-rr", correlationid="usage:sig"
    )
    answer = post(server, headers, json.dumps({"customer_id": "c-1", "quantity": 1}).encode())
    assert answer.status == 200, answer.body
    assert answer.headers["ce-id"].startswith("bill-")
    assert answer.headers["ce-replyid"] == "usage:sig"
