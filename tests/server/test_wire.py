"""HTTP/1.1 parsing on its own (govfn.server.wire), and the worker's receiver path against the
WSGI path: the same request gets the same answer either way."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govfn.app import HttpConfig, create_app
from govfn.chronicle.client import MemoryChronicle
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime
from govfn.server.chunked import BodyTooLarge, ChunkedBody
from govfn.server.handler import WorkerHandler
from govfn.server.protocol import Request
from govfn.server.wire import (
    RequestHead,
    WireError,
    parse_head,
    response_head,
)

from support.http_wire import Answer, call_wsgi


def test_a_head_is_parsed() -> None:
    head = parse_head(
        b"POST http://example.test/functions/a%20b/events?x=1#frag HTTP/1.1\r\n"
        b"Host: example.test\r\nContent-Length: 12\r\nX-Tab:\t v \t\r\n"
        b"Connection: keep-alive, Upgrade\r\nce-id: \xe9\r\nX-Tab: again"
    )
    assert (head.method, head.path, head.query, head.version) == (
        "POST",
        "/functions/a b/events",
        "x=1",
        "HTTP/1.1",
    )
    assert head.content_length == 12 and not head.chunked and head.keep_alive
    assert head.header("x-tab") == "v, again"
    assert head.header("ce-id") == "\xe9"  # Latin-1 text, as WSGI has it
    assert head.header("absent") is None


@pytest.mark.parametrize(
    ("head", "keep_alive", "expect"),
    [
        (b"GET / HTTP/1.1\r\nHost: h", True, False),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close", False, False),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE", False, False),
        (b"GET / HTTP/1.0", False, False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive", False, False),
        (b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1", True, True),
        (b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1", False, False),
    ],
)
def test_keep_alive_and_expectations(head: bytes, keep_alive: bool, expect: bool) -> None:
    parsed = parse_head(head)
    assert (parsed.keep_alive, parsed.expect_continue) == (keep_alive, expect)


def test_options_asterisk_and_absolute_targets() -> None:
    assert parse_head(b"OPTIONS * HTTP/1.1\r\nHost: h").path == "*"
    assert parse_head(b"GET https://h HTTP/1.1\r\nHost: h").path == "/"
    with pytest.raises(WireError):
        parse_head(b"GET * HTTP/1.1\r\nHost: h")
    with pytest.raises(WireError):
        parse_head(b"GET ftp://h/x HTTP/1.1\r\nHost: h")


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: h", 414),
        (b"GET / HTTP/1.1\r\nHost: h\r\n" + b"\r\n".join(b"A%d: v" % i for i in range(101)), 431),
        (b"GET / HTTP/1.1\r\nHost: h\r\nA: " + b"v" * 8200, 431),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1e3", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: \xb2", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nA: \x7f", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nExpect: something", 417),
    ],
)
def test_refusals(head: bytes, status: int) -> None:
    with pytest.raises(WireError) as refused:
        parse_head(head)
    assert refused.value.status == status


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b",
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: a",
    ],
)
def test_host_must_be_there_once_in_http_1_1_and_never_twice(head: bytes) -> None:
    with pytest.raises(WireError, match="exactly one Host") as refused:
        parse_head(head)
    assert refused.value.status == 400
    assert parse_head(b"GET / HTTP/1.0").keep_alive is False  # HTTP/1.0 may leave it out


def test_a_transfer_encoding_repeated_as_chunked_twice_is_refused() -> None:
    with pytest.raises(WireError):
        parse_head(
            b"POST / HTTP/1.1\r\nHost: h\r\n"
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
        )


ENCODED = b"5;name=value\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: t\r\n\r\nNEXT"


@pytest.mark.parametrize("split", range(len(ENCODED) + 1))
def test_chunked_bodies_split_anywhere(split: int) -> None:
    decoder = ChunkedBody(limit=100)
    first = decoder.feed(ENCODED[:split])
    rest = decoder.feed(ENCODED[split:]) if first is None else first + ENCODED[split:]
    assert bytes(decoder.body) == b"hello world!"
    assert rest == b"NEXT"


def test_chunked_bodies_fed_byte_by_byte() -> None:
    decoder = ChunkedBody(limit=100)
    results = [decoder.feed(bytes([byte])) for byte in ENCODED[:-4]]
    assert results[:-1] == [None] * (len(results) - 1) and results[-1] == b""
    assert bytes(decoder.body) == b"hello world!"


def test_chunked_limits() -> None:
    with pytest.raises(BodyTooLarge):
        ChunkedBody(limit=10).feed(b"b\r\n")
    with pytest.raises(BodyTooLarge):
        decoder = ChunkedBody(limit=10)
        decoder.feed(b"6\r\nabcdef\r\n")
        decoder.feed(b"6\r\n")
    with pytest.raises(WireError):
        ChunkedBody(limit=10).feed(b"1" * 2000)
    with pytest.raises(WireError):
        ChunkedBody(limit=10).feed(b"0\r\n" + b"T: v\r\n" * 101)


@pytest.mark.parametrize(
    "line",
    [b"2 ", b"2\t", b" 2", b"2 x", b"2;a=\x01", b"2;a\x7f", b"2;\x00", b"2;a=b\rc", b"+2", b""],
)
def test_a_malformed_chunk_size_line_is_refused(line: bytes) -> None:
    with pytest.raises(WireError) as caught:
        ChunkedBody(limit=100).feed(line + b"\r\n{}\r\n0\r\n\r\n")
    assert caught.value.status == 400 and caught.value.attribute == "body"


@pytest.mark.parametrize("line", [b"2", b"2;a", b"2;a=b", b'2;a="q v"', b"2 ;a=b", b"2;a=b\t;c"])
def test_chunk_extensions_are_ignored(line: bytes) -> None:
    decoder = ChunkedBody(limit=100)
    assert decoder.feed(line + b"\r\n{}\r\n0\r\n\r\n") == b""
    assert bytes(decoder.body) == b"{}"


def test_response_head_sets_framing_itself() -> None:
    data = response_head(
        "200 OK",
        [("Content-Length", "999"), ("Connection", "keep-alive"), ("X", "y")],
        5,
        keep_alive=False,
    )
    lines = data.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "Content-Length: 5" in lines and "Connection: close" in lines and "X: y" in lines
    assert "Content-Length: 999" not in lines and "Connection: keep-alive" not in lines
    assert any(line.startswith("Date: ") and line.endswith(" GMT") for line in lines)
    assert data.endswith(b"\r\n\r\n")


# -- the worker's receiver path answers as the WSGI path does ---------------------------

_registry = load_functions(["govfn.functions"], FunctionRegistry(), include_entry_points=False)
APP = create_app(
    runtime=FunctionRuntime(_registry, MemoryChronicle()),
    config=HttpConfig(max_body_bytes=4096),
)
HANDLER = WorkerHandler(APP, pool=None, loop=None)  # type: ignore[arg-type]


def call_native(path: str, headers: dict[str, str], body: bytes) -> Answer:
    lines = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    head: RequestHead = parse_head("\r\n".join(lines).encode("latin-1"))
    request = Request(head, body, ("127.0.0.1", 1), ("127.0.0.1", 2))

    async def handle() -> tuple[str, list[tuple[str, str]], bytes]:
        return await HANDLER.handle(request)

    status, answer_headers, data = APP.loop.run(handle())
    return Answer(int(status.split(" ")[0]), {k.lower(): v for k, v in answer_headers}, data)


def comparable(answer: Answer) -> tuple[int, dict[str, str], object]:
    headers = {k: v for k, v in answer.headers.items() if k not in ("ce-lineagecid",)}
    headers.pop("content-length", None)
    body: object = answer.body
    if answer.headers.get("content-type") == "application/problem+json":
        body = {k: v for k, v in json.loads(answer.body).items() if k != "invocation_id"}
    return answer.status, headers, body


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=20).filter(
    lambda text: text == text.strip(" \t")
)


@settings(
    max_examples=int(os.environ.get("GOVFN_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(
    attributes=st.dictionaries(
        st.sampled_from(["id", "source", "type", "specversion", "subject", "time", "Bad", "x"]),
        header_text | st.sampled_from(["1.0", "ECHO_REQUESTED", "%zz", "%c3%a9"]),
        max_size=6,
    ),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/cloudevents+json", "", "a b"]
    ),
    body=st.binary(max_size=64) | st.sampled_from([b"{}", b'{"a":1}', b"[1,2]", b"x" * 4096]),
    path=st.sampled_from(["/", "/functions/echo/events", "/functions/nope/events"]),
)
def test_the_worker_path_answers_as_the_wsgi_path_does(
    attributes: dict[str, str], content_type: str, body: bytes, path: str
) -> None:
    headers = {f"ce-{name}": value for name, value in attributes.items()}
    if content_type:
        headers["Content-Type"] = content_type
    wsgi = call_wsgi(APP, "POST", path, headers, body)
    try:
        native = call_native(path, headers, body)
    except WireError as refused:  # control characters: refused before any receiver runs
        assert refused.status == 400 and 400 <= wsgi.status < 500
        text = "".join(headers.values())
        assert any((ord(c) < 0x20 and c != "\t") or c == "\x7f" for c in text)
        return
    assert comparable(native) == comparable(wsgi)


def test_the_comparison_can_tell_answers_apart() -> None:
    valid = {"ce-id": "1", "ce-source": "/s", "ce-type": "ECHO_REQUESTED", "ce-specversion": "1.0"}
    ok = call_native("/", {**valid, "Content-Type": "application/json"}, b"{}")
    bad = call_native("/", {"Content-Type": "application/json"}, b"{}")
    assert comparable(ok) != comparable(bad) and ok.status == 200 and bad.status == 415
    assert asyncio.iscoroutinefunction(HANDLER.handle)
