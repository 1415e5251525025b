"""Raw-byte fuzzing of the worker's own HTTP parsing: a request head or a chunked body made
of any bytes either parses or is refused with a 4xx `WireError`; nothing else escapes.
GOVFN_FUZZ_EXAMPLES sets the examples per property (`make fuzz`: 10,000)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govfn.server.chunked import BodyTooLarge, ChunkedBody
from govfn.server.wire import WireError, parse_head

FUZZ = settings(
    max_examples=int(os.environ.get("GOVFN_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)

head_pieces = st.sampled_from(
    [
        b"POST / HTTP/1.1",
        b"GET /functions/echo/events HTTP/1.0",
        b"\r\n",
        b"Content-Length: 5",
        b"Content-Length: -1",
        b"Transfer-Encoding: chunked",
        b"Expect: 100-continue",
        b"Host: x",
        b": no-name",
        b"ce-id: \xff\xfe",
        b" folded",
        b"%zz",
    ]
)


@FUZZ
@given(st.lists(head_pieces | st.binary(max_size=40), max_size=12))
def test_any_head_parses_or_is_a_4xx(pieces: list[bytes]) -> None:
    head = b"".join(pieces)
    try:
        parse_head(head)
    except WireError as exc:
        assert 400 <= exc.status < 500


chunk_pieces = st.sampled_from(
    [b"5\r\nhello\r\n", b"0\r\n\r\n", b"\r\n", b"ffffffff\r\n", b"3;x=y\r\nabc\r\n", b"zz\r\n"]
)


@FUZZ
@given(st.lists(chunk_pieces | st.binary(max_size=30), max_size=10), st.integers(1, 7))
def test_any_chunked_body_decodes_or_is_refused(pieces: list[bytes], split: int) -> None:
    body = ChunkedBody(limit=64)
    data = b"".join(pieces)
    try:
        for start in range(0, len(data), split):  # fed in pieces, as the socket delivers it
            if body.feed(data[start : start + split]) is not None:
                break
    except WireError as exc:
        assert 400 <= exc.status < 500
    except BodyTooLarge:
        pass
    assert len(body.body) <= 64
