"""Canonical JSON through orjson, held to `rfc8785` as the oracle.

orjson's sorted output is RFC 8785's only on a domain (integers within 2**53, floats that
ECMAScript and `repr` write alike, keys that sort the same by code point and by UTF-16
unit, JSON types only). These tests check that claim about orjson itself on that domain,
that `canonical_json` and `canonical_flat` give RFC 8785 bytes on it, and that values off
it (which orjson alone would write differently) still give RFC 8785 bytes or are refused
as `rfc8785` refuses them.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid

import orjson
import pytest
import rfc8785
from hypothesis import example, given
from hypothesis import strategies as st

from govfn.chronicle import cid
from govfn.chronicle.cid import canonical_flat, canonical_json

bmp_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=12)
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
safe_integers = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
# Floats whose ECMAScript form is `repr`'s: not integral, 1e-4 <= |x| < 1e16.
safe_floats = (
    st.floats(min_value=1e-4, max_value=1e16, exclude_max=True)
    | st.floats(min_value=-1e16, max_value=-1e-4, exclude_min=True)
).filter(lambda number: number % 1.0 != 0)

on_domain = st.recursive(
    st.none() | st.booleans() | safe_integers | safe_floats | bmp_text,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(bmp_text, children, max_size=5)
    ),
    max_leaves=25,
)


@given(on_domain)
@example({"\ue000": 1, "\uffff": 2, "\u00e9": 3, "a": 4, "\x7f": "\x00\x1f\u2028\ufeff"})
@example([0.0001, 999999999999999.9, 4503599627370495.5, -1.5e-4, 123456789.123])
def test_orjson_sorted_equals_rfc8785_on_the_domain(value: object) -> None:
    assert orjson.dumps(value, option=cid._SORTED) == rfc8785.dumps(value)


@given(on_domain)
def test_canonical_json_on_the_domain_equals_rfc8785(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


off_domain_numbers = st.sampled_from(
    [1.0, -0.0, 0.0, 1e16, 1e20, 1e21, 2.0**60, 3e-6, 1.5e-6, 9.99e-6, 1e-7, 5e-324, 2**53 - 1]
) | st.floats(min_value=-1e-4, max_value=1e-4, allow_nan=False)

off_domain = st.recursive(
    st.none() | st.booleans() | off_domain_numbers | safe_floats | any_text,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(any_text, children, max_size=5)
    ),
    max_leaves=25,
)


@given(off_domain)
@example({"\U0001f600": 1, "\ufb01": 2, "\ue000": 3})  # astral and U+E000-U+FFFF keys
@example({"n": 1.0, "m": [-0.0, 3e-6]})
def test_canonical_json_off_the_domain_equals_rfc8785(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


ascii_keys = st.text(st.characters(max_codepoint=0x7F), max_size=10)
record_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | safe_floats
    | any_text
)


# A record may hold one object of scalars (its `sender`), whose keys may be anything; keys
# beyond ASCII at the top send it off the fast path, whose bytes must be RFC 8785's too.
record_members = record_values | st.dictionaries(any_text, record_values, max_size=4)


@given(st.dictionaries(ascii_keys | any_text, record_members, max_size=16))
@example({"duration_ms": 5.0, "success": True})
@example({"sender": {"iss": "https://issuer", "sub": "system:serviceaccount:ns:sa"}})
@example({"sender": {"\U0001f600": "a", "\ue000": "b"}})
@example({"sender": {"n": 2**53}, "m": 1})
@example({"duration_ms": 0.0, "error": None})
@example({"duration_ms": 0.012, "invocation_id": "inv-1"})
@example({"n": 2**53})
def test_canonical_flat_equals_rfc8785(value: dict[str, object]) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(ValueError):
            canonical_flat(value)
        return
    assert canonical_flat(value) == expected


class Colour(enum.Enum):
    RED = 1


class Label(enum.StrEnum):
    NAME = "name"


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    "value",
    [
        Colour.RED,
        uuid.UUID(int=7),
        datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        Point(1),
        float("nan"),
        float("inf"),
        orjson.Fragment(b"1"),
    ],
    ids=["enum", "uuid", "datetime", "dataclass", "nan", "inf", "fragment"],
)
def test_what_orjson_writes_but_json_has_not_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        canonical_json({"k": value})
    with pytest.raises(ValueError):
        canonical_flat({"k": value})


def test_a_str_enum_is_written_as_rfc8785_writes_it() -> None:
    value = {"k": Label.NAME, "n": 1}
    assert canonical_json(value) == canonical_flat(value) == rfc8785.dumps(value)


def test_a_lone_surrogate_is_refused_as_before() -> None:
    for canonicalise in (canonical_json, canonical_flat):
        with pytest.raises(UnicodeEncodeError):
            canonicalise({"k": "\ud800"})


def test_nesting_past_orjson_limit_is_still_canonical() -> None:
    value: object = 1
    for _ in range(300):
        value = [value]
    assert canonical_json(value) == b"[" * 300 + b"1" + b"]" * 300
