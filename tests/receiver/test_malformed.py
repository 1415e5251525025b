"""The malformed-request battery, against a real `govfn serve`.

Each request gets the 4xx the CloudEvents binding and Knative's delivery contract imply,
with an `application/problem+json` body naming the attribute (requests gunicorn refuses
itself, such as oversized headers, get its 4xx). None gets a 5xx, and the server still
serves a valid event afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.http_server import SAMPLE_MODULES, Server, start_server, stop_server
from support.http_wire import Answer, Header, raw_request

ECHO = "/functions/echo/events"
JSON = ("Content-Type", "application/json")
STRUCTURED = ("Content-Type", "application/cloudevents+json")
BATCH = ("Content-Type", "application/cloudevents-batch+json")
MAX_BODY = 65536


def ce(*skip: str, **values: str | bytes) -> list[Header]:
    """Binary-mode headers of a valid echo event, minus `skip`, with `values` set."""
    base: dict[str, str | bytes] = {
        "specversion": "1.0",
        "id": "m-1",
        "source": "/tests/malformed",
        "type": "ECHO_REQUESTED",
    }
    base.update(values)
    return [(f"ce-{name}", value) for name, value in base.items() if name not in skip]


def event(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "specversion": "1.0",
        "id": "s-1",
        "source": "/tests/malformed",
        "type": "ECHO_REQUESTED",
        "data": {"ok": True},
    }
    for name, value in changes.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def dumps(value: object) -> bytes:
    return json.dumps(value).encode()


@dataclass
class Case:
    name: str
    headers: list[Header]
    body: bytes
    status: int | tuple[int, ...]
    attribute: str | None  # None: refused by gunicorn, no problem body
    path: str = ECHO
    method: str = "POST"
    content_length: bool = True
    extra: dict[str, str] = field(default_factory=dict)


CASES = [
    # binary mode: required attributes
    *(
        Case(f"binary-missing-{a}", [*ce(a), JSON], b"{}", 400, a)
        for a in ("id", "source", "type", "specversion")
    ),
    *(
        Case(f"binary-empty-{a}", [*ce(**{a: ""}), JSON], b"{}", 400, a)
        for a in ("id", "source", "type", "specversion")
    ),
    Case("binary-specversion-0.3", [*ce(specversion="0.3"), JSON], b"{}", 400, "specversion"),
    Case("binary-specversion-2.0", [*ce(specversion="2.0"), JSON], b"{}", 400, "specversion"),
    Case(
        "binary-ce-datacontenttype",
        [*ce(datacontenttype="application/json"), JSON],
        b"{}",
        400,
        "datacontenttype",
    ),
    # binary mode: data
    Case("binary-bad-json", [*ce(), JSON], b'{"a":', 400, "data"),
    Case("binary-json-not-utf8", [*ce(), JSON], b'{"a":"\xff\xfe"}', 400, "data"),
    Case("binary-json-nan", [*ce(), JSON], b'{"a":NaN}', 400, "data"),
    Case("binary-json-too-deep", [*ce(), JSON], b"[" * 30000 + b"]" * 30000, 400, "data"),
    # binary mode: data that parses as JSON but is not I-JSON
    Case("binary-json-number-out-of-range", [*ce(), JSON], b'{"a":1e400}', 400, "data"),
    Case("binary-json-negative-infinity", [*ce(), JSON], b'{"a":-Infinity}', 400, "data"),
    Case("binary-json-lone-surrogate", [*ce(), JSON], b'{"a":"x\\ud800y"}', 400, "data"),
    Case("binary-json-lone-surrogate-key", [*ce(), JSON], b'{"\\udfff":1}', 400, "data"),
    Case("binary-json-duplicate-key", [*ce(), JSON], b'{"a":1,"b":{"c":1,"c":2}}', 400, "data"),
    Case("binary-json-huge-integer", [*ce(), JSON], b'{"a":' + b"7" * 5000 + b"}", 400, "data"),
    Case("binary-json-trailing-garbage", [*ce(), JSON], b'{"a":1} x', 400, "data"),
    Case(
        "binary-bad-media-type",
        [*ce(), ("Content-Type", "not a media type")],
        b"x",
        400,
        "datacontenttype",
    ),
    # binary mode: header values and names
    Case("binary-bad-percent", [*ce(subject="a%zzb"), JSON], b"{}", 400, "subject"),
    Case("binary-truncated-percent", [*ce(subject="ab%4"), JSON], b"{}", 400, "subject"),
    Case("binary-percent-not-utf8", [*ce(subject="%ff%fe"), JSON], b"{}", 400, "subject"),
    Case("binary-raw-not-utf8", [*ce(subject=b"\xff\xfe"), JSON], b"{}", 400, "subject"),
    Case("binary-percent-control-char", [*ce(id="a%00b"), JSON], b"{}", 400, "id"),
    Case("binary-quoted-unescaped-quote", [*ce(subject='"a"b"'), JSON], b"{}", 400, "subject"),
    Case("binary-empty-subject", [*ce(subject=""), JSON], b"{}", 400, "subject"),
    Case("binary-bad-time", [*ce(time="yesterday"), JSON], b"{}", 400, "time"),
    Case("binary-impossible-time", [*ce(time="2026-02-30T10:00:00Z"), JSON], b"{}", 400, "time"),
    Case("binary-bad-attribute-name", [*ce(), ("ce-foo-bar", "x"), JSON], b"{}", 400, "foo-bar"),
    # binary mode: not a CloudEvent, or not one this function takes
    Case("no-ce-headers-json", [JSON], b"{}", 415, "content-type"),
    Case("no-ce-headers-no-type", [], b"hello", 415, "content-type"),
    Case("binary-unhandled-type", [*ce(type="NOT_FOR_ECHO"), JSON], b"{}", 400, "type"),
    Case(
        "root-unrouted-type", [*ce(type="NOBODY_HANDLES_THIS"), JSON], b"{}", 400, "type", path="/"
    ),
    Case(
        "binary-gsap-missing",
        [*ce(type="GSAP_CR_RECEIVED"), JSON],
        b'{"customer_id":"c"}',
        400,
        "gsapcontextid",
        path="/functions/billing/events",
    ),
    Case("unknown-function", [*ce(), JSON], b"{}", 404, None, path="/functions/nope/events"),
    Case("receiver-get", [], b"", 405, None, method="GET"),
    # structured mode
    Case("structured-bad-json", [STRUCTURED], b'{"id":', 400, "event"),
    Case("structured-not-utf8", [STRUCTURED], b'{"id":"\xff"}', 400, "event"),
    Case("structured-array", [STRUCTURED], dumps([event()]), 400, "event"),
    Case("structured-missing-id", [STRUCTURED], dumps(event(id=None)), 400, "id"),
    Case(
        "structured-missing-specversion",
        [STRUCTURED],
        dumps(event(specversion=None)),
        400,
        "specversion",
    ),
    Case("structured-null-type", [STRUCTURED], dumps({**event(), "type": None}), 400, "type"),
    Case(
        "structured-specversion-float",
        [STRUCTURED],
        b'{"specversion":1.0,"id":"x","source":"/s","type":"ECHO_REQUESTED"}',
        400,
        "specversion",
    ),
    Case("structured-empty-source", [STRUCTURED], dumps(event(source="")), 400, "source"),
    *(
        Case(f"structured-{a}-not-a-string", [STRUCTURED], dumps(event(**{a: v})), 400, a)
        for a, v in (("id", 7), ("source", True), ("specversion", 1), ("type", False))
    ),
    Case(
        "structured-data-out-of-range",
        [STRUCTURED],
        dumps(event(data=None))[:-1] + b',"data":{"x":[1e400]}}',
        400,
        "data",
    ),
    Case(
        "structured-data-nan",
        [STRUCTURED],
        dumps(event(data=None))[:-1] + b',"data":NaN}',
        400,
        "data",
    ),
    Case(
        "structured-data-lone-surrogate",
        [STRUCTURED],
        dumps(event(data="\ud800")),
        400,
        "data",
    ),
    Case(
        "structured-duplicate-id",
        [STRUCTURED],
        dumps(event(id="s-1"))[:-1] + b',"id":"s-2"}',
        400,
        "id",
    ),
    Case("structured-type-object", [STRUCTURED], dumps(event(type={"a": 1})), 400, "type"),
    Case(
        "structured-data-and-base64",
        [STRUCTURED],
        dumps(event(data_base64="aGk=")),
        400,
        "data_base64",
    ),
    Case(
        "structured-bad-base64",
        [STRUCTURED],
        dumps(event(data=None, data_base64="not base64!")),
        400,
        "data_base64",
    ),
    Case(
        "structured-base64-number",
        [STRUCTURED],
        dumps(event(data=None, data_base64=12)),
        400,
        "data_base64",
    ),
    Case("structured-bad-name", [STRUCTURED], dumps(event(**{"Bad-Name": "x"})), 400, "Bad-Name"),
    Case(
        "structured-bad-time", [STRUCTURED], dumps(event(time="2026-13-01T00:00:00Z")), 400, "time"
    ),
    Case(
        "structured-xml",
        [("Content-Type", "application/cloudevents+xml")],
        b"<e/>",
        415,
        "content-type",
    ),
    Case(
        "structured-no-format",
        [("Content-Type", "application/cloudevents")],
        dumps(event()),
        415,
        "content-type",
    ),
    Case(
        "structured-latin1",
        [("Content-Type", "application/cloudevents+json; charset=iso-8859-1")],
        dumps(event()),
        415,
        "content-type",
    ),
    # batch mode
    Case("batch-object", [BATCH], dumps(event()), 400, "batch"),
    Case("batch-bad-json", [BATCH], b"[{", 400, "batch"),
    Case("batch-element-not-object", [BATCH], dumps([event(), "x"]), 400, "batch[1]"),
    Case("batch-element-missing-id", [BATCH], dumps([event(), event(id=None)]), 400, "batch[1].id"),
    Case("batch-element-integer-id", [BATCH], dumps([event(), event(id=2)]), 400, "batch[1].id"),
    Case(
        "batch-element-duplicate-data-key",
        [BATCH],
        b"[" + dumps(event()) + b"," + dumps(event(data=None))[:-1] + b',"data":{"k":1,"k":1}}]',
        400,
        "batch[1].data",
    ),
    Case(
        "batch-element-bad-specversion",
        [BATCH],
        dumps([event(specversion="0.3")]),
        400,
        "batch[0].specversion",
    ),
    Case(
        "batch-element-bad-base64",
        [BATCH],
        dumps([event(data=None, data_base64="%%%")]),
        400,
        "batch[0].data_base64",
    ),
    Case(
        "batch-element-unhandled-type",
        [BATCH],
        dumps([event(), event(id="2", type="OTHER")]),
        400,
        "type",
    ),
    Case(
        "batch-xml",
        [("Content-Type", "application/cloudevents-batch+xml")],
        b"<e/>",
        415,
        "content-type",
    ),
    # size and header limits
    Case(
        "declared-too-large",
        [*ce(), JSON, ("Content-Length", str(MAX_BODY + 1))],
        b"",
        413,
        "content-length",
        content_length=False,
    ),
    Case(
        "chunked-too-large",
        [*ce(), JSON, ("Transfer-Encoding", "chunked")],
        b"%x\r\n%s\r\n0\r\n\r\n" % (MAX_BODY + 10, b"7" * (MAX_BODY + 10)),
        413,
        "body",
        content_length=False,
    ),
    Case(
        "chunked-size-then-space",
        [*ce(), JSON, ("Transfer-Encoding", "chunked")],
        b"2 \r\n{}\r\n0\r\n\r\n",
        400,
        "body",
        content_length=False,
    ),
    Case(
        "chunked-extension-control-char",
        [*ce(), JSON, ("Transfer-Encoding", "chunked")],
        b"2;a=\x01\r\n{}\r\n0\r\n\r\n",
        400,
        "body",
        content_length=False,
    ),
    Case("huge-header", [*ce(subject="s" * 20000), JSON], b"{}", (400, 431), None),
    Case(
        "too-many-headers",
        [*ce(), *((f"x-h{i}", "v") for i in range(150)), JSON],
        b"{}",
        (400, 431),
        None,
    ),
    Case(
        "content-length-not-number",
        [*ce(), JSON, ("Content-Length", "ten")],
        b"{}",
        400,
        None,
        content_length=False,
    ),
]


@pytest.fixture(scope="module")
def battery_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("battery")
    modules = [arg for name in SAMPLE_MODULES for arg in ("--functions", name)]
    running = start_server(tmp, *modules, "--threads", "4", "--max-body", str(MAX_BODY))
    yield running
    stop_server(running)


def test_the_battery_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


def send(server: Server, case: Case) -> Answer:
    return raw_request(
        server.port,
        case.method,
        case.path,
        case.headers,
        case.body,
        content_length=case.content_length,
    )


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_malformed_request_is_refused_with_the_attribute_named(
    battery_server: Server, case: Case
) -> None:
    answer = send(battery_server, case)
    expected = case.status if isinstance(case.status, tuple) else (case.status,)
    assert answer.status in expected, (answer.status, answer.body[:300])
    assert answer.status < 500
    if case.attribute is not None:
        assert answer.problem["attribute"] == case.attribute, answer.problem


@pytest.mark.slow
def test_the_server_still_serves_after_the_battery(battery_server: Server) -> None:
    for case in CASES:  # again, all in a row, then a valid event
        send(battery_server, case)
    answer = raw_request(battery_server.port, "POST", ECHO, [*ce(), JSON], b'{"still":"here"}')
    assert answer.status == 200
    assert answer.json() == {"still": "here"}
    assert answer.headers["ce-type"] == "ECHO_REPLIED"
    assert "Traceback" not in battery_server.log_text()
