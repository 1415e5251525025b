"""Binary mode's `ce-` headers: values that need no encoding are sent as they are, and every
other value is percent-encoded as the CloudEvents HTTP binding asks."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from govfn.binary_mode import binary_headers, is_header_safe

RAW = re.compile(r"[\x21-\x7e]*")  # what a header value may hold raw, but `"` and `%`


def encoded_by_the_binding(value: str) -> str:
    return "".join(
        char
        if RAW.fullmatch(char) and char not in '"%'
        else "".join(f"%{octet:02X}" for octet in char.encode("utf-8"))
        for char in value
    )


values = st.text(max_size=12) | st.text(
    st.sampled_from(list('az09/-:. "%\t\x7f\x00é€')), max_size=12
)


@given(st.dictionaries(st.sampled_from(["id", "source", "type", "subject", "x1"]), values))
@example({"id": "a b", "source": "/s"})
@example({"id": "a\x7f", "type": "t"})
def test_each_attribute_is_sent_as_the_binding_encodes_it(attributes: dict[str, str]) -> None:
    headers = binary_headers(attributes, "application/json")
    assert headers[0] == ("Content-Type", "application/json")
    assert headers[1:] == [
        (f"ce-{name}", encoded_by_the_binding(value)) for name, value in attributes.items()
    ]


@given(values)
def test_a_safe_value_is_one_the_binding_leaves_as_it_is(value: str) -> None:
    assert is_header_safe(value) == (encoded_by_the_binding(value) == value)
