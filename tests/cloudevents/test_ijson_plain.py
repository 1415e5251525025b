"""The orjson reading of request JSON agrees with the strict decoder on every document:
the same value (same types, same key order), or the same refusal."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from govfn.cloudevents import ijson
from govfn.cloudevents.ijson import parse_json
from govfn.problem import HttpProblem

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from([":", " :", '":', "\u2028", "\x7f", "{", "["])
)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=4) | st.just(":"), children, max_size=4)
    ),
    max_leaves=20,
)
layouts = st.sampled_from(
    [
        {"separators": (",", ":")},
        {"separators": (", ", " : ")},
        {"indent": 2},
        {"indent": "\t", "ensure_ascii": False},
        {"ensure_ascii": False, "separators": (",", ":")},
    ]
)


def outcome(read: object) -> tuple[str, str]:
    try:
        return "value", repr(read())  # type: ignore[operator]
    except HttpProblem as problem:
        return "refused", f"{problem.attribute}: {problem}"


def same_as_strict(data: bytes) -> None:
    assert outcome(lambda: parse_json(data, "data")) == outcome(
        lambda: ijson._parse_strictly(data, "data", False)
    )
    assert outcome(lambda: parse_json(data, "event", members=True)) == outcome(
        lambda: ijson._parse_strictly(data, "event", True)
    )


@given(documents, layouts)
def test_written_documents_read_as_the_strict_decoder_reads_them(
    document: object, layout: dict[str, object]
) -> None:
    same_as_strict(json.dumps(document, **layout).encode("utf-8"))  # type: ignore[arg-type]


@given(st.dictionaries(st.text(max_size=3), scalars, min_size=1, max_size=4), st.data())
def test_a_duplicate_key_is_refused_as_the_strict_decoder_refuses_it(
    members: dict[str, object], data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from(sorted(members)))
    separator = data.draw(st.sampled_from([":", " :", ": ", "\n:"]))
    text = json.dumps(members, ensure_ascii=False, separators=(",", separator))
    duplicated = f"{text[:-1]},{json.dumps(key, ensure_ascii=False)}{separator}0}}".encode()
    with pytest.raises(HttpProblem, match="appears twice"):
        parse_json(duplicated, "data")
    same_as_strict(duplicated)
    same_as_strict(b'{"wrapper":[' + duplicated + b"]}")


@given(st.binary(max_size=40))
@example(b'{"a" :1,"a":2}')
@example(b'{"a":":x","a":":x"}')
@example(b"[" * 1030 + b"]" * 1030)
@example(b"[" * 1020 + b"]" * 1020)
@example(b"18446744073709551616")
@example(b"[-9223372036854775809]")
@example(b"1e400")
@example(b'"\xed\xa0\x80"')
@example(b"\xef\xbb\xbf{}")
@example(b"\x0c1")
def test_any_bytes_read_or_refused_as_the_strict_decoder_does(data: bytes) -> None:
    same_as_strict(data)


def test_integers_past_64_bits_stay_integers() -> None:
    assert parse_json(b'{"n":18446744073709551616}', "data") == {"n": 2**64}
    assert type(parse_json(b"[-9223372036854775809]", "data")[0]) is int


def test_nesting_past_the_strict_decoders_limit_is_refused_as_before() -> None:
    deep = b"[" * 1020 + b"]" * 1020  # within orjson's limit, past the strict decoder's
    with pytest.raises(HttpProblem, match="nested too deeply"):
        parse_json(deep, "data")
