"""Property-based fuzzing of the receivers: whatever arrives, never a 5xx and never a crash.

Runs in-process on the WSGI app (any header text reaches the receiver unfiltered).
GOVFN_FUZZ_EXAMPLES sets the examples per property (default 150; `make fuzz` runs more).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govfn.app import HttpConfig, create_app
from govfn.chronicle.client import MemoryChronicle
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime

from support.http_wire import Answer, call_wsgi

EXAMPLES = int(os.environ.get("GOVFN_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)

_registry = load_functions(["govfn.functions"], FunctionRegistry(), include_entry_points=False)
APP = create_app(
    runtime=FunctionRuntime(_registry, MemoryChronicle()),
    config=HttpConfig(max_body_bytes=4096),
)

latin1_text = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=40)
attribute_names = st.sampled_from(
    [
        "id",
        "source",
        "type",
        "specversion",
        "subject",
        "time",
        "datacontenttype",
        "gsapcontextid",
        "dataschema",
        "Bad_Name",
        "",
        "x" * 30,
    ]
) | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
header_values = (
    st.sampled_from(
        [
            "1.0",
            "0.3",
            "ECHO_REQUESTED",
            "GSAP_CR_RECEIVED",
            "/src",
            "%",
            "%zz",
            "%c3%a9",
            '"quoted"',
            '"',
            "2026-01-01T00:00:00Z",
            "",
        ]
    )
    | latin1_text
)
content_types = (
    st.sampled_from(
        [
            "",
            "application/json",
            "text/plain",
            "application/cloudevents+json",
            "application/cloudevents-batch+json",
            "application/cloudevents+json; charset=latin-1",
            "application/cloudevents",
            "application/octet-stream",
            "application/x+json; a=b",
            ";;",
        ]
    )
    | latin1_text
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "specversion": st.sampled_from(["1.0", "0.3", 1.0, None, ""]),
        "id": st.one_of(st.text(max_size=10), st.integers(), st.none()),
        "source": st.one_of(st.text(max_size=10), st.none(), st.lists(st.integers())),
        "type": st.sampled_from(["ECHO_REQUESTED", "GSAP_CR_RECEIVED", "OTHER", ""]),
        "data": json_values,
        "data_base64": st.one_of(st.text(max_size=12), st.integers()),
        "time": st.text(max_size=30),
        "gsapcontextid": st.text(max_size=5),
    },
)
bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | event_like.map(lambda v: json.dumps(v).encode())
    | st.lists(event_like, max_size=4).map(lambda v: json.dumps(v).encode())
    | st.binary(min_size=4097, max_size=4200)
)
ALLOWED = {200, 202, 400, 404, 405, 409, 413, 415, 422, 429}


def check(answer: Answer) -> None:
    assert answer.status in ALLOWED, (answer.status, answer.body[:200])
    if answer.status >= 400:
        problem = answer.problem
        assert problem["detail"]
    elif answer.status == 200:
        assert answer.headers.get("ce-id") or answer.headers["content-type"].startswith(
            "application/cloudevents-batch+json"
        )
    else:
        assert answer.body == b""


@FUZZ
@given(
    headers=st.dictionaries(attribute_names, header_values, max_size=8),
    content_type=content_types,
    body=bodies,
    path=st.sampled_from(["/", "/functions/echo/events", "/functions/billing/events"]),
)
def test_binary_mode_fuzz(
    headers: dict[str, str], content_type: str, body: bytes, path: str
) -> None:
    environ_headers: dict[str, Any] = {f"ce-{name}": value for name, value in headers.items()}
    if content_type:
        environ_headers["content-type"] = content_type
    check(call_wsgi(APP, "POST", path, environ_headers, body))


@FUZZ
@given(
    event=event_like,
    batch=st.booleans(),
    path=st.sampled_from(["/", "/functions/echo/events"]),
)
def test_structured_and_batch_fuzz(event: dict[str, Any], batch: bool, path: str) -> None:
    content_type = "application/cloudevents-batch+json" if batch else "application/cloudevents+json"
    body = json.dumps([event, event] if batch else event).encode()
    check(call_wsgi(APP, "POST", path, {"content-type": content_type}, body))


def test_the_fuzzed_app_still_serves_a_valid_event() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "after-fuzz",
        "ce-source": "/fuzz",
        "ce-type": "ECHO_REQUESTED",
        "content-type": "application/json",
    }
    answer = call_wsgi(APP, "POST", "/", headers, b'{"ok":true}')
    assert (answer.status, answer.json()) == (200, {"ok": True})
