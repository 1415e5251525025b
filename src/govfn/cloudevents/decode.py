"""Parse and validate CloudEvents 1.0 HTTP requests (binary, structured, batch).

Everything is checked before a function runs: the four required attributes present
and non-empty, `specversion` 1.0, attribute names `[a-z0-9]`, header values percent-
decoded to valid UTF-8 (quoted values and lower-case hex accepted), JSON that is I-JSON
(RFC 7493: no duplicate keys, finite numbers, valid Unicode) wherever JSON is read, the
core attributes JSON strings in structured and batch mode, no `ce-datacontenttype` header
in binary mode, `data`/`data_base64` exclusive and valid. Any failure is an `HttpProblem`
(4xx) naming the attribute, never another exception.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from govfn.cloudevents.ijson import parse_json
from govfn.percent import percent_decode
from govfn.problem import HttpProblem

REQUIRED = ("id", "source", "specversion", "type")
NON_EMPTY_OPTIONAL = ("datacontenttype", "dataschema", "subject", "time")
# The attributes a Chronicle record keeps, each at most this many characters, so that every
# record fits a transparency-log entry (65,535 bytes) whatever an event carries.
RECORDED = (
    "id",
    "source",
    "type",
    "gsapcontextid",
    "chroniclesessionid",
    "pipelinerunid",
    "traceparent",
)
MAX_RECORDED_CHARS = 1024
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"

_NAME = re.compile(r"[a-z0-9]+")
_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class IncomingEvent(NamedTuple):
    """One validated CloudEvent: string attributes (extensions included) and its data."""

    attributes: dict[str, str]
    data: Any

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def source(self) -> str:
        return self.attributes["source"]


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_json_media_type(mt: str) -> bool:
    return mt in ("application/json", "text/json") or mt.endswith("+json")


# -- the three content modes ------------------------------------------------------------


def parse_request(
    content_type: str, ce_headers: Mapping[str, str], body: bytes
) -> list[IncomingEvent]:
    """The events of one request (one, or a batch: see `is_batch`).

    `ce_headers` maps the lower-case text after `ce-` to the raw header value.
    """
    mt = media_type(content_type)
    if mt.startswith("application/cloudevents-batch"):
        _require_json_format(mt, BATCH, content_type)
        return parse_batch(body)
    if mt.startswith("application/cloudevents"):
        _require_json_format(mt, STRUCTURED, content_type)
        return [parse_structured(body)]
    if not ce_headers:
        raise HttpProblem(
            415,
            f"not a CloudEvent: no ce- headers and media type {mt or '(none)'!r} is neither "
            f"{STRUCTURED} nor {BATCH}",
            attribute="content-type",
        )
    return [parse_binary(content_type, ce_headers, body)]


def is_batch(content_type: str) -> bool:
    return media_type(content_type).startswith("application/cloudevents-batch")


def _require_json_format(mt: str, expected: str, content_type: str) -> None:
    if mt != expected:
        raise HttpProblem(
            415, f"event format {mt!r} is not supported; use {expected}", attribute="content-type"
        )
    charset = _charset(content_type)
    if charset not in (None, "utf-8", "utf8"):
        raise HttpProblem(415, f"charset {charset!r} is not UTF-8", attribute="content-type")


def _charset(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def parse_binary(content_type: str, ce_headers: Mapping[str, str], body: bytes) -> IncomingEvent:
    attributes: dict[str, str] = {}
    for raw_name, raw_value in ce_headers.items():
        name = raw_name.lower()
        if not (name.isascii() and name.isalnum()):  # [a-z0-9]+, as it is lower case
            shown = name.replace("_", "-")
            raise HttpProblem(
                400, f"attribute name {shown!r} is not [a-z0-9]+", attribute=shown or "ce-"
            )
        if name == "datacontenttype":
            raise HttpProblem(
                400,
                "binary mode carries datacontenttype in Content-Type, not ce-datacontenttype",
                attribute="datacontenttype",
            )
        attributes[name] = decode_header_value(name, raw_value)
    if content_type:
        mt = media_type(content_type)
        if not _MEDIA_TYPE.fullmatch(mt):
            raise HttpProblem(
                400,
                f"Content-Type {content_type!r} is not a media type",
                attribute="datacontenttype",
            )
        attributes["datacontenttype"] = content_type.strip()
    _check_attributes(attributes, "")
    if not body:
        data: Any = None
    elif content_type and is_json_media_type(mt):
        data = parse_json(body, "data")
    else:
        data = body
    return IncomingEvent(attributes, data)


def parse_structured(body: bytes) -> IncomingEvent:
    document = parse_json(body, "event", members=True)
    if not isinstance(document, dict):
        raise HttpProblem(400, "a structured CloudEvent must be a JSON object", attribute="event")
    return _structured_event(document, "")


def parse_batch(body: bytes) -> list[IncomingEvent]:
    document = parse_json(body, "batch", members=True)
    if not isinstance(document, list):
        raise HttpProblem(400, "a CloudEvents batch must be a JSON array", attribute="batch")
    events = []
    for index, element in enumerate(document):
        where = f"batch[{index}]"
        if not isinstance(element, dict):
            raise HttpProblem(400, f"{where} is not a JSON object", attribute=where)
        events.append(_structured_event(element, where + "."))
    return events


def _structured_event(document: dict[str, Any], where: str) -> IncomingEvent:
    attributes: dict[str, str] = {}
    for name, value in document.items():
        if name in ("data", "data_base64"):
            continue
        if not _NAME.fullmatch(name):
            raise HttpProblem(
                400, f"attribute name {name!r} is not [a-z0-9]+", attribute=where + name
            )
        if value is None:
            continue
        if name in REQUIRED and not isinstance(value, str):
            raise HttpProblem(
                400, f"attribute {name!r} must be a JSON string", attribute=where + name
            )
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int):
            value = str(value)
        elif not isinstance(value, str):
            raise HttpProblem(
                400,
                f"attribute {name!r} must be a string, integer or boolean",
                attribute=where + name,
            )
        attributes[name] = value
    _check_attributes(attributes, where)
    has_data = document.get("data") is not None
    encoded = document.get("data_base64")
    if has_data and encoded is not None:
        raise HttpProblem(
            400, "data and data_base64 are mutually exclusive", attribute=where + "data_base64"
        )
    if encoded is None:
        return IncomingEvent(attributes, document.get("data"))
    if not isinstance(encoded, str):
        raise HttpProblem(400, "data_base64 must be a string", attribute=where + "data_base64")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise HttpProblem(
            400, "data_base64 is not valid base64", attribute=where + "data_base64"
        ) from None
    return IncomingEvent(attributes, data)


def _check_attributes(attributes: dict[str, str], where: str) -> None:
    for name in REQUIRED:
        if name not in attributes:
            raise HttpProblem(
                400, f"required attribute {name!r} is missing", attribute=where + name
            )
        if not attributes[name]:
            raise HttpProblem(400, f"required attribute {name!r} is empty", attribute=where + name)
    if attributes["specversion"] != "1.0":
        raise HttpProblem(
            400,
            f"specversion {attributes['specversion']!r} is not supported; use 1.0",
            attribute=where + "specversion",
        )
    for name in NON_EMPTY_OPTIONAL:
        if name in attributes and not attributes[name]:
            raise HttpProblem(400, f"attribute {name!r} is empty", attribute=where + name)
    for name in RECORDED:
        if len(attributes.get(name, "")) > MAX_RECORDED_CHARS:
            raise HttpProblem(
                400,
                f"attribute {name!r} is over {MAX_RECORDED_CHARS} characters",
                attribute=where + name,
            )
    if _CONTROL.search("".join(attributes.values())):
        for name, value in attributes.items():
            if _CONTROL.search(value):
                raise HttpProblem(
                    400, f"attribute {name!r} holds a control character", attribute=where + name
                )
    if "time" in attributes and not _is_timestamp(attributes["time"]):
        raise HttpProblem(400, "time is not an RFC 3339 timestamp", attribute=where + "time")


def _is_timestamp(value: str) -> bool:
    if not _RFC3339.fullmatch(value):
        return False
    head, dot, rest = value.partition(".")
    if dot:  # fromisoformat takes at most 6 fraction digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = head + "." + (rest[:digits] + "000000")[:6] + rest[digits:]
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


# -- header values ------------------------------------------------------------------------


def decode_header_value(name: str, raw: str) -> str:
    """RFC 7230 quoted-string unescaping, then one round of strict percent-decoding to UTF-8."""
    if raw.isascii() and "%" not in raw and '"' not in raw:
        return raw.strip(" \t")  # what the steps below leave of it
    value = raw.strip(" \t")
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = _unquote(name, value[1:-1])
    try:
        octets = value.encode("latin-1")
    except UnicodeEncodeError:
        raise HttpProblem(400, f"ce-{name} holds non-Latin-1 text", attribute=name) from None
    if b"%" in octets:
        try:
            octets = percent_decode(octets)
        except ValueError:
            raise HttpProblem(
                400, f"ce-{name} has invalid percent-encoding", attribute=name
            ) from None
    try:
        return octets.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpProblem(400, f"ce-{name} does not decode to UTF-8", attribute=name) from None


def _unquote(name: str, inner: str) -> str:
    out = []
    escaped = False
    for char in inner:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            raise HttpProblem(400, f"ce-{name} has an unescaped quote", attribute=name)
        else:
            out.append(char)
    if escaped:
        raise HttpProblem(400, f"ce-{name} ends in a lone backslash", attribute=name)
    return "".join(out)
