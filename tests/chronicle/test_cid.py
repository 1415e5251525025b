"""CIDs: the shared test vectors, and independence from key order and whitespace."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from govfn.chronicle.cid import (
    _b32,
    canonical_json,
    cid_of,
    cid_of_bytes,
    content_cid,
    ecmascript_number,
)

VECTORS = json.loads((Path(__file__).parent.parent / "data" / "cid.json").read_text())

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("vector", VECTORS["bytes"], ids=lambda v: repr(v["utf8"]))
def test_bytes_vectors(vector: dict[str, str]) -> None:
    assert cid_of_bytes(vector["utf8"].encode("utf-8")) == vector["cid"]


@pytest.mark.parametrize("vector", VECTORS["json"], ids=lambda v: v["canonical"])
def test_json_vectors(vector: dict[str, object]) -> None:
    assert canonical_json(vector["value"]).decode() == vector["canonical"]
    assert cid_of(vector["value"]) == vector["cid"]


@given(st.binary(min_size=32, max_size=32))
def test_digest_base32_equals_base64_s(digest: bytes) -> None:
    assert _b32(digest) == base64.b32encode(digest).decode("ascii").lower().rstrip("=")


@pytest.mark.parametrize("digest", [bytes(32), b"\xff" * 32, hashlib.sha256(b"").digest()])
def test_digest_base32_at_the_edges(digest: bytes) -> None:
    assert _b32(digest) == base64.b32encode(digest).decode("ascii").lower().rstrip("=")


@given(json_values)
def test_fast_path_equals_rfc8785(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=8), st.randoms())
def test_cid_ignores_key_order_and_whitespace(value: dict[str, object], rnd: object) -> None:
    items = list(value.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    reordered = json.loads(json.dumps(dict(items), indent=3))
    assert cid_of(reordered) == cid_of(value)


@pytest.mark.parametrize(
    "value",
    [{"k": 1.5e300 * 1e300}, {"k": float("nan")}, {"k": 2**60}, {"k": object()}, {1: "x"}],
    ids=["inf", "nan", "int-too-big", "object", "non-string-key"],
)
def test_non_json_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        cid_of(value)


def test_non_bmp_keys_sort_by_utf16() -> None:
    value = {"\U0001f600": 1, "\ufb01": 2}  # UTF-16: D83D... sorts before FB01
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("\U0001f600".encode()) < canonical_json(value).index(
        "\ufb01".encode()
    )


def test_content_cid_addresses_every_json_value() -> None:
    assert content_cid({"a": 1}) == cid_of({"a": 1})
    assert content_cid(b"hello world") == cid_of_bytes(b"hello world")
    big = {"n": 2**64, "a": 1}
    assert content_cid(big) == cid_of_bytes(b'{"a":1,"n":18446744073709551616}')
    with pytest.raises(ValueError):
        content_cid({"x": float("nan")})


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_ecmascript_number_equals_rfc8785(value: float) -> None:
    assert ecmascript_number(value).encode() == rfc8785.dumps(value)


@given(
    st.floats(min_value=-1e-4, max_value=1e-4, allow_nan=False)
    | st.sampled_from([1e-5, 1e-6, 1e-7, 9.999999e-7, 1.0000001e-6, -1e-7, 5e-324, -2.5e-308])
)
def test_small_floats_in_exponent_form_equal_rfc8785(value: float) -> None:
    assert ecmascript_number(value).encode() == rfc8785.dumps(value)


awkward_values = st.recursive(
    st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1.0, -0.0, 1e21, 1e-7, 2.0**60, 5e-324, 1e16])
    | st.text(alphabet=st.sampled_from(["\x00", "0", "a", "\\", '"', "\u2028"]), max_size=6),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=30,
)


@given(awkward_values)
def test_off_path_floats_and_nul_strings_equal_rfc8785(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_a_document_is_not_changed_by_canonicalising_it() -> None:
    document = {"a": [1.0, {"b": 1e-7}], "c": "\x00"}
    before = json.dumps(document)
    canonical_json(document)
    assert json.dumps(document) == before
