"""The request parser on its own: header value decoding, timestamps, media types."""

from __future__ import annotations

import pytest

from govfn.cloudevents.decode import decode_header_value, is_json_media_type, parse_request
from govfn.problem import HttpProblem

REQUIRED = {"specversion": "1.0", "id": "1", "source": "/s", "type": "T"}


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("plain", "plain"),
        ("a%20b", "a b"),
        ("caf%c3%a9", "café"),  # lower-case hex
        ("caf%C3%A9", "café"),
        ('"quoted value"', "quoted value"),
        ('"a\\"b\\\\c"', 'a"b\\c'),  # RFC 7230 quoted-pair
        ('"%41"', "A"),  # unquote, then one round of percent-decoding
        ("%2541", "%41"),  # exactly one round
        ("caf\u00c3\u00a9", "café"),  # raw UTF-8 octets, as WSGI hands them over (latin-1)
        ("  padded\t", "padded"),
    ],
)
def test_header_values_decode(raw: str, decoded: str) -> None:
    assert decode_header_value("subject", raw) == decoded


@pytest.mark.parametrize(
    "raw", ["%", "%4", "%g0", "a%zz", "%ff", "%c3", '"a"b"', '"a\\"', "\u00ff"]
)
def test_bad_header_values_name_the_attribute(raw: str) -> None:
    with pytest.raises(HttpProblem) as caught:
        decode_header_value("subject", raw)
    assert (caught.value.status, caught.value.attribute) == (400, "subject")


@pytest.mark.parametrize(
    ("time", "valid"),
    [
        ("2026-01-02T03:04:05Z", True),
        ("2026-01-02t03:04:05.123456789+02:00", True),
        ("2024-02-29T00:00:00-00:00", True),
        ("2026-01-02", False),
        ("2026-01-02T03:04:05", False),  # no offset
        ("2026-01-02T24:00:00Z", False),
        ("2025-02-29T00:00:00Z", False),
        ("2026-01-02T03:04:05.Z", False),
        ("2026-01-02T03:04:05Z\n", False),
    ],
)
def test_time_must_be_rfc3339(time: str, valid: bool) -> None:
    headers = {**REQUIRED, "time": time}
    if valid:
        assert parse_request("", headers, b"")[0].attributes["time"] == time
    else:
        with pytest.raises(HttpProblem) as caught:
            parse_request("", headers, b"")
        assert caught.value.attribute == "time"


@pytest.mark.parametrize(
    ("media_type", "json"),
    [
        ("application/json", True),
        ("text/json", True),
        ("application/vnd.api+json", True),
        ("text/plain", False),
        ("application/octet-stream", False),
    ],
)
def test_json_media_types(media_type: str, json: bool) -> None:
    assert is_json_media_type(media_type) is json


def test_binary_data_is_parsed_only_for_json_content_types() -> None:
    assert parse_request("application/json; charset=utf-8", REQUIRED, b'{"a":1}')[0].data == {
        "a": 1
    }
    assert parse_request("text/plain", REQUIRED, b"{not json")[0].data == b"{not json"
    assert parse_request("", REQUIRED, b"")[0].data is None


def test_structured_extensions_may_be_integers_and_booleans() -> None:
    body = b'{"specversion":"1.0","id":"1","source":"/s","type":"T","count":3,"flag":true}'
    event = parse_request("application/cloudevents+json", {}, body)[0]
    assert event.attributes["count"] == "3" and event.attributes["flag"] == "true"


def refusal(content_type: str, headers: dict[str, str], body: bytes) -> HttpProblem:
    with pytest.raises(HttpProblem) as caught:
        parse_request(content_type, headers, body)
    return caught.value


BINARY_NOT_IJSON = [
    b'{"a":1e400}',
    b'{"a":-1e400}',
    b'{"a":NaN}',
    b'{"a":Infinity}',
    b'["\\ud800"]',  # a lone high surrogate
    b'{"x":"\\udc00 and more"}',  # a lone low surrogate
    b'{"\\ud800":1}',  # in a key
    b'["\\udc00\\ud800"]',  # a pair in the wrong order
    b'{"a":1,"a":1}',  # duplicate keys, even with equal values
    b'{"outer":{"k":1,"k":2}}',
    b"[" + b"9" * 4301 + b"]",
]


@pytest.mark.parametrize("body", BINARY_NOT_IJSON)
def test_binary_json_data_that_is_not_i_json_is_refused_naming_data(body: bytes) -> None:
    problem = refusal("application/json", REQUIRED, body)
    assert (problem.status, problem.attribute) == (400, "data"), problem.detail


def test_the_refusal_of_a_huge_integer_does_not_quote_python() -> None:
    problem = refusal("application/json", REQUIRED, b"[" + b"1" * 5000 + b"]")
    assert problem.detail == "data is not I-JSON: an integer has more than 4300 digits"


def test_what_i_json_allows_still_parses() -> None:
    body = b'{"a":1.5e300,"b":-0.0,"c":"\\ud83d\\ude00","d":"\\\\ud800","e":[{"k":1},{"k":2}]}'
    data = parse_request("application/json", REQUIRED, body)[0].data
    assert data == {
        "a": 1.5e300,
        "b": -0.0,
        "c": "\U0001f600",
        "d": "\\ud800",
        "e": [{"k": 1}, {"k": 2}],
    }
    assert parse_request("application/json", REQUIRED, b"[" + b"9" * 4300 + b"]")[0].data


STRUCTURED = "application/cloudevents+json"
EVENT = b'{"specversion":"1.0","id":"1","source":"/s","type":"T"'


@pytest.mark.parametrize(
    ("document", "attribute"),
    [
        (b'{"specversion":"1.0","id":7,"source":"/s","type":"T"}', "id"),
        (b'{"specversion":"1.0","id":"1","source":true,"type":"T"}', "source"),
        (b'{"specversion":1,"id":"1","source":"/s","type":"T"}', "specversion"),
        (b'{"specversion":"1.0","id":"1","source":"/s","type":3}', "type"),
        (EVENT + b',"data":1e400}', "data"),
        (EVENT + b',"data":{"deep":[NaN]}}', "data"),
        (EVENT + b',"data":"\\ud800"}', "data"),
        (EVENT + b',"data":{"k":1,"k":2}}', "data"),
        (EVENT + b',"id":"2"}', "id"),  # a duplicate attribute
        (EVENT + b',"count":1e400}', "count"),
        (EVENT + b',"subject":"\\udfff"}', "subject"),
    ],
)
def test_structured_events_follow_the_json_format_strictly(document: bytes, attribute: str) -> None:
    problem = refusal(STRUCTURED, {}, document)
    assert (problem.status, problem.attribute) == (400, attribute), problem.detail


def test_batch_elements_are_named_where_they_break_the_rules() -> None:
    good = EVENT + b"}"
    for element, attribute in (
        (b'{"specversion":"1.0","id":2,"source":"/s","type":"T"}', "batch[1].id"),
        (EVENT + b',"data":[Infinity]}', "batch[1].data"),
        (EVENT + b',"data":{"a":{"b":0,"b":0}}}', "batch[1].data"),
    ):
        problem = refusal(
            "application/cloudevents-batch+json", {}, b"[" + good + b"," + element + b"]"
        )
        assert (problem.status, problem.attribute) == (400, attribute), problem.detail
