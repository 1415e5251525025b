"""Strict JSON as CloudEvents requests must carry it (I-JSON, RFC 7493): UTF-8, no
duplicate object keys, finite numbers and integers Python can read, strings of valid
Unicode, nesting the parser can handle. A refused document is an `HttpProblem` (400)
naming the part of the request at fault, or with `members` the event member that holds the
flaw (found by a lenient second parse that only runs on refusal).

Most documents are read by orjson (`_read_plainly`), which agrees with the strict decoder
where nothing needs a second look: no escapes, no integer literal of 19 or more digits
(orjson makes floats of integers past 64 bits), nesting far from either parser's limit, and
no key lost to a duplicate (checked by counting key ends in the text and in the document
written back). Everything else, and every refusal, goes through the strict decoder, so a
refused document gets the same answer either way."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

import orjson

from govfn.problem import HttpProblem

__all__ = ["parse_json"]


def parse_json(data: bytes, what: str, *, members: bool = False) -> Any:
    """Strict JSON (I-JSON, RFC 7493): UTF-8, no duplicate object keys, numbers that are
    finite (no NaN, Infinity or 1e400) and integers Python can read, strings of valid
    Unicode (no lone surrogate), nesting the parser can handle. `what` names the part of
    the request at fault; with `members`, a flaw inside an event names the event's member
    that holds it (`data`, `batch[2].id`) instead."""
    value = _read_plainly(data)
    if value is not _NOT_PLAIN:
        return value
    return _parse_strictly(data, what, members)


def _parse_strictly(data: bytes, what: str, members: bool) -> Any:
    try:
        text = data.decode("utf-8")
        value = _STRICT.decode(text)
    except UnicodeDecodeError:
        raise HttpProblem(400, f"{what} is not valid UTF-8", attribute=what) from None
    except RecursionError:
        raise HttpProblem(400, f"{what} is nested too deeply", attribute=what) from None
    except json.JSONDecodeError as exc:
        raise HttpProblem(400, f"{what} is not valid JSON: {exc}", attribute=what) from None
    except ValueError as exc:  # one of the I-JSON rules (int() refuses a too long literal)
        detail = f"{what} is not I-JSON: {_flaw_of(exc)}"
        raise HttpProblem(400, detail, attribute=_at(text, what, members)) from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _is_flawed(value):
        detail = f"{what} is not I-JSON: a string holds a lone surrogate (not Unicode)"
        raise HttpProblem(400, detail, attribute=_at(text, what, members))
    return value


_NOT_PLAIN = object()
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19  # 19 digits in a row, once every digit reads as 0
_MAX_PLAIN_OPENINGS = 200  # brackets and braces: far below both parsers' nesting limits


def _read_plainly(data: bytes) -> Any:
    """The document as the strict decoder reads it, or _NOT_PLAIN when it needs that decoder.

    Without a backslash every string is written the same in `data` and in orjson's output,
    so both hold the same colons, but for those between keys and values; a duplicate key
    drops a member (and its colon) from the document, and so from its output."""
    if b"\\" in data or _LONG_NUMBER in data.translate(_DIGITS_AS_ZERO):
        return _NOT_PLAIN
    if len(data) > 2 * _MAX_PLAIN_OPENINGS and (
        data.count(b"[") + data.count(b"{") > _MAX_PLAIN_OPENINGS
    ):
        return _NOT_PLAIN
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return _NOT_PLAIN
    if type(value) is dict and data.count(b":") == len(value):
        return value  # a colon per member: none lost, none nested, none in a string
    if (type(value) is dict or type(value) is list) and (
        data.count(b":") != orjson.dumps(value).count(b":")
    ):
        return _NOT_PLAIN
    return value


class _Flaw(ValueError):
    """What breaks an I-JSON rule: raised by the strict decoder, returned by the lenient
    one (which only runs to find where a refused document's flaw is)."""


def _flaw_of(exc: ValueError) -> str:
    if isinstance(exc, _Flaw):
        return str(exc)
    return f"an integer has more than {sys.get_int_max_str_digits()} digits"


def _constant(name: str) -> _Flaw:
    return _Flaw(f"{name} is not a JSON number")


def _float(literal: str) -> float | _Flaw:
    number = float(literal)
    return number if math.isfinite(number) else _Flaw(f"the number {literal[:40]} is out of range")


def _int(literal: str) -> int | _Flaw:
    if len(literal.lstrip("-")) > sys.get_int_max_str_digits():
        return _Flaw(f"an integer has more than {sys.get_int_max_str_digits()} digits")
    return int(literal)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                document[key] = _Flaw(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return document


def _strict_constant(name: str) -> Any:
    raise _constant(name)


def _strict_float(literal: str) -> float:
    number = _float(literal)
    if isinstance(number, _Flaw):
        raise number
    return number


def _strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = _object(pairs)
    if len(document) != len(pairs):
        flaw = next(value for value in document.values() if isinstance(value, _Flaw))
        raise flaw
    return document


_STRICT = json.JSONDecoder(
    parse_constant=_strict_constant, parse_float=_strict_float, object_pairs_hook=_strict_object
)
_LENIENT = json.JSONDecoder(
    parse_constant=_constant, parse_float=_float, parse_int=_int, object_pairs_hook=_object
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # \uD800 to \uDFFF, escaped in JSON
_SURROGATE = re.compile("[\ud800-\udfff]")


def _is_flawed(value: Any) -> bool:
    """True when `value` holds a flaw, or a string (a key or a value) with a lone surrogate."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_is_flawed(key) or _is_flawed(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_is_flawed(item) for item in value)
    return isinstance(value, _Flaw)


def _at(text: str, what: str, members: bool) -> str:
    """Where a refused document's flaw is: `what`, or with `members` the event member."""
    if not members:
        return what
    document = _LENIENT.decode(text)
    events = enumerate(document) if isinstance(document, list) else [(-1, document)]
    for index, event in events:
        if isinstance(event, dict):
            for key, item in event.items():
                if _is_flawed(key) or _is_flawed(item):
                    prefix = f"batch[{index}]." if index >= 0 else ""
                    return f"{prefix}{key}"
    return what
