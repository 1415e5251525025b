"""Round trips through the Python CloudEvents SDK (cloudevents 2.x), an encoder govfn
does not use on its hot path: whatever it sends is accepted with the same attributes,
and every reply parses back as a CloudEvent."""

from __future__ import annotations

from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, from_binary, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from govfn.app import HttpConfig, create_app
from govfn.chronicle.client import MemoryChronicle
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime

from support.http_server import SAMPLE_MODULES
from support.http_wire import Answer, call_wsgi

_registry = load_functions(SAMPLE_MODULES, FunctionRegistry(), include_entry_points=False)
APP = create_app(runtime=FunctionRuntime(_registry, MemoryChronicle()), config=HttpConfig())
FORMAT = JSONFormat()

printable = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30)
json_data = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def send(message: HTTPMessage, path: str = "/") -> Answer:
    return call_wsgi(APP, "POST", path, dict(message.headers), message.body)


def parse_reply(answer: Answer) -> CloudEvent:
    assert answer.status == 200, answer.body
    return from_binary(HTTPMessage(dict(answer.headers), answer.body), FORMAT)  # type: ignore[no-any-return]


@settings(max_examples=60, deadline=None, database=None)
@given(
    subject=printable,
    gsap=printable,
    event_id=printable,
    data=st.dictionaries(st.text(max_size=8), json_data, max_size=4),
    structured=st.booleans(),
)
def test_python_sdk_events_round_trip(
    subject: str, gsap: str, event_id: str, data: dict[str, Any], structured: bool
) -> None:
    event = CloudEvent(
        attributes={
            "type": "WHEREAMI_REQUESTED",
            "source": "/sdk/python",
            "id": event_id,
            "subject": subject,
            "gsapcontextid": gsap,
            "datacontenttype": "application/json",
        },
        data=data,
    )
    message = to_structured(event, FORMAT) if structured else to_binary(event, FORMAT)
    reply = parse_reply(send(message))
    assert reply.get_type() == "WHEREAMI_REPLIED"
    assert reply.get_extension("gsapcontextid") == gsap
    context = reply.get_data()["context"]  # type: ignore[index]
    assert context["event_subject"] == subject
    assert context["event_id"] == event_id
    assert context["gsap_context_id"] == gsap


@settings(max_examples=40, deadline=None, database=None)
@given(data=st.dictionaries(st.text(max_size=8), json_data, max_size=5))
def test_echo_data_round_trips(data: dict[str, Any]) -> None:
    """Objects only: the SDK writes other data types raw, not as JSON, in binary mode."""
    event = CloudEvent(
        attributes={
            "type": "ECHO_REQUESTED",
            "source": "/sdk/python",
            "id": "echo-1",
            "datacontenttype": "application/json",
        },
        data=data,
    )
    assert parse_reply(send(to_binary(event, FORMAT))).get_data() == data
