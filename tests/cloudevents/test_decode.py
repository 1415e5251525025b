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
