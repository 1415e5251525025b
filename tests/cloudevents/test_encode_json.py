"""A reply's JSON body reads back as the same value as the standard library's encoding of
its data, whichever encoder wrote it."""

from __future__ import annotations

import enum
import json

from hypothesis import given
from hypothesis import strategies as st

from govfn.cloudevents.encode import encode_data


class Level(enum.IntEnum):
    HIGH = 3


class Tag(str):
    pass


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from([Level.HIGH, Tag("t"), "\ud800", "\u2028", 1e16, 1e-7, -0.0])
)
data = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=4) | st.integers(0, 9), children, max_size=4)
    ),
    max_leaves=20,
)


def read_back(body: bytes | str) -> str:
    return repr(json.loads(body))  # repr: NaN equals NaN, 1 and 1.0 differ


@given(data)
def test_reply_body_reads_back_as_json_dumps_of_the_data(value: object) -> None:
    content_type, body = encode_data(value)
    assert content_type == "application/json"
    assert read_back(body) == read_back(json.dumps(value, separators=(",", ":")))


def test_nan_and_infinity_are_not_written_as_null() -> None:
    _, body = encode_data({"a": float("nan"), "b": [float("inf")], "c": None})
    assert body == b'{"a":NaN,"b":[Infinity],"c":null}'


def test_plain_data_is_written_compact_in_utf8() -> None:
    _, body = encode_data({"order": 4711, "note": "caf\u00e9", "items": [1, 2.5]})
    assert body == '{"order":4711,"note":"café","items":[1,2.5]}'.encode()
