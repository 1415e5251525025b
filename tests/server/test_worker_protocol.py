"""govfn's worker speaking HTTP/1.1, in-process on loopback: keep-alive, pipelining, chunked
bodies, 100-continue, HTTP/1.0, header limits, malformed heads, slow and vanishing clients,
the management API through the thread pool."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from govfn.app import GovfnApp
from govfn.server.connection import HttpConnection
from govfn.server.handler import event_request, wsgi_environ
from govfn.server.protocol import Limits

from support.http_native import NativeServer, closed_by_peer, native_server, read_answers

MAX_BODY = 4096


def event(event_id: str, body: bytes = b'{"n":1}', *extra: str, path: str = "/") -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "ce-specversion: 1.0",
        f"ce-id: {event_id}",
        "ce-source: /tests/worker",
        "ce-type: ECHO_REQUESTED",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
def served(make_app: Callable[..., GovfnApp]) -> Iterator[NativeServer]:
    app = make_app(dev=True, function_id="echo", max_body_bytes=MAX_BODY)
    limits = Limits(max_body=MAX_BODY, keepalive_s=0.5, body_timeout_s=0.5, max_connections=20)
    with native_server(app, limits) as server:
        yield server


def test_keep_alive_serves_several_requests_on_one_connection(served: NativeServer) -> None:
    with served.connect() as sock:
        for i in range(5):
            sock.sendall(event(f"ka-{i}", b'{"i":%d}' % i))
            [answer] = read_answers(sock, 1)
            assert (answer.status, answer.json()) == (200, {"i": i})
            assert "connection" not in answer.headers
    assert len(served.handled) == 5


def test_pipelined_requests_are_answered_in_order(served: NativeServer) -> None:
    with served.connect() as sock:
        sock.sendall(b"".join(event(f"p-{i}", b"[%d]" % i) for i in range(20)))
        answers = read_answers(sock, 20)
    assert [answer.json() for answer in answers] == [[i] for i in range(20)]


def test_a_request_split_into_single_bytes_is_read(served: NativeServer) -> None:
    with served.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in event("drip", b'{"drip":true}'):
            sock.send(bytes([byte]))
        [answer] = read_answers(sock, 1)
    assert (answer.status, answer.json()) == (200, {"drip": True})


def test_chunked_body_with_extensions_and_trailers(served: NativeServer) -> None:
    request = event("chunked", b"", "Transfer-Encoding: chunked").replace(
        b"Content-Length: 0\r\n", b""
    )
    body = b'4;ext=1\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Trailer: yes\r\n\r\n'
    with served.connect() as sock:
        sock.sendall(request + body + event("after-chunked", b"[2]"))
        first, second = read_answers(sock, 2)
    assert (first.status, first.json()) == (200, {"a": 1})
    assert (second.status, second.json()) == (200, [2])


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\nab\r\n0\r\n\r\n",
        b"2\r\nabc\r\n0\r\n\r\n",
        b"+2\r\nab\r\n0\r\n\r\n",
        b"0x2\r\nab\r\n",
    ],
)
def test_malformed_chunks_answer_400_and_close(served: NativeServer, chunks: bytes) -> None:
    request = event("bad-chunks", b"", "Transfer-Encoding: chunked").replace(
        b"Content-Length: 0\r\n", b""
    )
    with served.connect() as sock:
        sock.sendall(request + chunks)
        [answer] = read_answers(sock, 1)
        assert answer.status == 400
        assert answer.headers["connection"] == "close"
        assert closed_by_peer(sock, 2)
    assert served.handled == []


def test_a_chunked_body_over_the_limit_is_413_naming_the_body(served: NativeServer) -> None:
    request = event("big-chunks", b"", "Transfer-Encoding: chunked").replace(
        b"Content-Length: 0\r\n", b""
    )
    chunk = b"%x\r\n%s\r\n" % (1000, b"x" * 1000)
    with served.connect() as sock:
        sock.sendall(request + chunk * 5)
        [answer] = read_answers(sock, 1)
    assert answer.status == 413 and answer.problem["attribute"] == "body"


def test_expect_100_continue_gets_100_then_the_answer(served: NativeServer) -> None:
    body = b'{"continued":1}'
    request = event("continue", body, "Expect: 100-continue")
    with served.connect() as sock:
        sock.sendall(request[: -len(body)])
        interim = sock.recv(1024)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        [answer] = read_answers(sock, 1)
    assert (answer.status, answer.json()) == (200, {"continued": 1})


def test_expect_100_continue_with_a_declared_oversized_body_gets_413_only(
    served: NativeServer,
) -> None:
    request = event("too-big", b"", "Expect: 100-continue").replace(
        b"Content-Length: 0", f"Content-Length: {MAX_BODY + 1}".encode()
    )
    with served.connect() as sock:
        sock.sendall(request)
        [answer] = read_answers(sock, 1)
        assert answer.status == 413 and answer.problem["attribute"] == "content-length"
        assert closed_by_peer(sock, 2)


def test_an_unknown_expectation_is_417(served: NativeServer) -> None:
    with served.connect() as sock:
        sock.sendall(event("expect", b"{}", "Expect: teapot"))
        [answer] = read_answers(sock, 1)
    assert answer.status == 417


def test_http_1_0_is_answered_and_closed(served: NativeServer) -> None:
    with served.connect() as sock:
        sock.sendall(event("old", b"[10]").replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        [answer] = read_answers(sock, 1)
        assert (answer.status, answer.json()) == (200, [10])
        assert answer.headers["connection"] == "close"
        assert closed_by_peer(sock, 2)


def test_connection_close_is_honoured(served: NativeServer) -> None:
    with served.connect() as sock:
        sock.sendall(event("bye", b"[1]", "Connection: close") + event("never", b"[2]"))
        [answer] = read_answers(sock, 1)
        assert answer.headers["connection"] == "close"
        assert closed_by_peer(sock, 2)
    assert len(served.handled) == 1


def test_a_long_request_line_is_414(served: NativeServer) -> None:
    with served.connect() as sock:
        sock.sendall(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        [answer] = read_answers(sock, 1)
    assert answer.status == 414


def test_a_long_request_line_still_arriving_is_414(served: NativeServer) -> None:
    with served.connect() as sock:
        sock.sendall(b"GET /" + b"a" * 9000)
        [answer] = read_answers(sock, 1)
    assert answer.status == 414


@pytest.mark.parametrize(
    "extra",
    [
        [f"X-Many-{i}: v" for i in range(101)],
        ["X-Huge: " + "h" * 9000],
    ],
    ids=["too-many-fields", "field-too-long"],
)
def test_header_limits_are_431(served: NativeServer, extra: list[str]) -> None:
    with served.connect() as sock:
        sock.sendall(event("limits", b"{}", *extra))
        [answer] = read_answers(sock, 1)
    assert answer.status == 431
    assert served.handled == []


def test_header_limits_are_431_while_the_head_still_arrives(served: NativeServer) -> None:
    with served.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(150)))
        [answer] = read_answers(sock, 1)
    assert answer.status == 431


@pytest.mark.parametrize(
    "head",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / FTP/1.1\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET nothing HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nNo-Colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nName : v\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nA: v\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nA: v\x00w\r\n\r\n",
        b"GET / HTTP/1.1\nA: b\n\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ],
)
def test_malformed_heads_are_400_and_close(served: NativeServer, head: bytes) -> None:
    with served.connect() as sock:
        sock.sendall(head)
        [answer] = read_answers(sock, 1)
        assert answer.status == 400, answer
        about_host = b"Host: h\r\n" not in head and head.startswith(b"GET / HTTP/1.1\r\n")
        assert ("Host" in answer.problem["detail"]) == about_host, answer.problem
        assert closed_by_peer(sock, 2)
    assert served.handled == []


def test_leading_empty_lines_are_ignored(served: NativeServer) -> None:
    with served.connect() as sock:
        sock.sendall(b"\r\n\r\n" + event("leading", b"[3]"))
        [answer] = read_answers(sock, 1)
    assert (answer.status, answer.json()) == (200, [3])


def test_an_idle_keep_alive_connection_is_closed(served: NativeServer) -> None:
    with served.connect() as sock:
        sock.sendall(event("idle", b"[1]"))
        read_answers(sock, 1)
        started = time.monotonic()
        assert closed_by_peer(sock, 5)
        assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "partial",
    [b"POST / HTTP/1.1\r\nHost: x\r\n", event("slow-body", b'{"n":12345}')[:-4]],
    ids=["head", "body"],
)
def test_a_slow_client_is_cut_off(served: NativeServer, partial: bytes) -> None:
    with served.connect() as sock:
        started = time.monotonic()
        for byte in partial[:-1]:  # slowloris: a byte now and then keeps nothing alive
            sock.send(bytes([byte]))
            if time.monotonic() - started > 0.2:
                break
            time.sleep(0.002)
        assert closed_by_peer(sock, 5)
        assert time.monotonic() - started < 3
    assert served.handled == []


def test_a_client_vanishing_mid_request_leaves_the_server_serving(served: NativeServer) -> None:
    for cut in (10, 60, len(event("gone")) - 3):
        sock = served.connect()
        sock.sendall(event("gone")[:cut])
        sock.close()
    with served.connect() as sock:
        sock.sendall(event("still-here", b"[7]"))
        [answer] = read_answers(sock, 1)
    assert (answer.status, answer.json()) == (200, [7])
    deadline = time.monotonic() + 3
    while served.open_count() > 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert served.open_count() == 0


def test_a_client_vanishing_while_its_event_runs_still_commits_it(
    make_app: Callable[..., GovfnApp],
) -> None:
    app = make_app(dev=True)
    limits = Limits(max_body=MAX_BODY, keepalive_s=1.0)
    with native_server(app, limits) as server:
        request = event("vanish", b'{"sleep":0.3}', path="/functions/slow/events").replace(
            b"ECHO_REQUESTED", b"SLOW_REQUESTED"
        )
        with server.connect() as sock:
            sock.sendall(request)
        deadline = time.monotonic() + 5
        records = app.runtime.backstop.client.records  # type: ignore[union-attr]
        while len(records) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [r.type for r in records] == ["FUNCTION_INVOKED", "FUNCTION_COMPLETED"]
        assert records[1].payload["success"] is True


def test_too_many_connections_are_refused_with_503(served: NativeServer) -> None:
    socks = [served.connect() for _ in range(20)]
    try:
        with served.connect() as extra:
            [answer] = read_answers(extra, 1)
            assert answer.status == 503
        socks[0].sendall(event("within-limit", b"[1]"))
        assert read_answers(socks[0], 1)[0].status == 200
    finally:
        for sock in socks:
            sock.close()


def test_health_is_answered_on_the_loop(served: NativeServer) -> None:
    with served.connect() as sock:
        sock.sendall(b"GET /health/readiness HTTP/1.1\r\nHost: x\r\n\r\n")
        ready = read_answers(sock, 1)[0]
        assert ready.status == 200 and ready.json()["ready"] is True
        sock.sendall(b"HEAD /health/liveness HTTP/1.1\r\nHost: x\r\n\r\n")
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert b"Content-Length: 15\r\n" in head  # the length of the body HEAD leaves out


def test_management_runs_through_the_thread_pool(served: NativeServer) -> None:
    query = b"GET /functions/?x=%C3%A9 HTTP/1.1\r\nHost: example.test:8080\r\nX_Drop: 1\r\n\r\n"
    invoke_body = b'{"event": {"x": 1}}'
    invoke = (
        b"POST /functions/echo/invoke HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    ) % (len(invoke_body), invoke_body)
    with served.connect() as sock:
        sock.sendall(query + invoke + b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        catalogue, invoked, missing = read_answers(sock, 3)
    assert catalogue.status == 200 and catalogue.json()["count"] == 1
    assert invoked.status == 200 and invoked.json()["data"] == {"x": 1}
    assert missing.status == 404 and missing.problem["status"] == 404
    environ = wsgi_environ(served.handled[0], multiprocess=False)
    assert environ["PATH_INFO"] == "/functions/"
    assert environ["QUERY_STRING"] == "x=%C3%A9"
    assert environ["HTTP_HOST"] == "example.test:8080"
    assert environ["SERVER_NAME"] == "127.0.0.1" and environ["REMOTE_ADDR"] == "127.0.0.1"
    assert "HTTP_X_DROP" not in environ
    assert environ["wsgi.input"].read() == b""


def test_a_wsgi_app_that_fails_answers_500_and_the_connection_lives_on(
    make_app: Callable[..., GovfnApp],
) -> None:
    app = make_app(dev=True)

    def broken(environ: object, start_response: object) -> list[bytes]:
        raise RuntimeError("management broke")

    app._management = broken
    with native_server(app, Limits(max_body=MAX_BODY)) as server, server.connect() as sock:
        sock.sendall(b"GET /functions/ HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.sendall(event("after-500", b"[5]", path="/functions/echo/events"))
        failed, served_after = read_answers(sock, 2)
    assert failed.status == 500 and "management broke" not in failed.body.decode()
    assert (served_after.status, served_after.json()) == (200, [5])


def test_receiver_refusals_keep_their_problem_bodies(served: NativeServer) -> None:
    declared = event("declared", b"").replace(
        b"Content-Length: 0", f"Content-Length: {MAX_BODY + 1}".encode()
    )
    with served.connect() as sock:
        sock.sendall(event("bad", b"{", path="/functions/echo/events"))
        sock.sendall(event("nobody", b"{}", path="/functions/nope/events"))
        sock.sendall(b"GET /functions/echo/events HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.sendall(declared)
        bad, unknown, get, too_large = read_answers(sock, 4)
    assert (bad.status, bad.problem["attribute"]) == (400, "data")
    assert unknown.status == 404
    assert (get.status, get.headers["allow"]) == (405, "POST")
    assert (too_large.status, too_large.problem["attribute"]) == (413, "content-length")


def test_a_repeated_ce_header_is_joined_as_in_wsgi(served: NativeServer) -> None:
    with served.connect() as sock:
        sock.sendall(event("twice", b"{}", "ce-subject: a", "ce-subject: b", "ce-x_y: dropped"))
        [answer] = read_answers(sock, 1)
    assert (answer.status, json.loads(answer.body)) == (200, {})
    seen = event_request(served.handled[0].head)
    assert seen.ce_headers["subject"] == "a,b" and "x_y" not in seen.ce_headers


def test_the_request_timeout_caps_the_wait_on_the_loop(
    make_app: Callable[..., GovfnApp],
) -> None:
    app = make_app(request_timeout_s=0.1)
    slow = event("capped", b'{"sleep": 0.6}').replace(b"ECHO_REQUESTED", b"SLOW_REQUESTED")
    with native_server(app, Limits(max_body=MAX_BODY)) as server, server.connect() as sock:
        started = time.monotonic()
        sock.sendall(slow + event("next", b"[1]"))
        capped, after = read_answers(sock, 2)
        assert time.monotonic() - started < 0.5
    assert capped.status == 504 and "0.1s" in capped.problem["detail"]
    assert (after.status, after.json()) == (200, [1])
    assert app.state.in_flight == 0


def test_a_client_that_pipelines_without_reading_is_held_back(
    make_app: Callable[..., GovfnApp],
) -> None:
    app = make_app(dev=True, function_id="echo")
    limits = Limits(max_body=MAX_BODY, max_buffered=16 * 1024)
    filler = b"x" * 3000
    requests = b"".join(event(f"flood-{i}", b'[%d,"%s"]' % (i, filler)) for i in range(2000))
    with native_server(app, limits) as server, socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
        sock.settimeout(10)
        sock.connect(("127.0.0.1", server.port))
        sender = threading.Thread(target=sock.sendall, args=(requests,), daemon=True)
        sender.start()
        time.sleep(1.0)  # nothing is read: the server's writes and then its reads back up
        [connection] = asyncio.run_coroutine_threadsafe(_open(server), server.loop).result(5)
        assert len(connection.buffer) <= 16 * 1024 + 256 * 1024
        assert len(server.handled) < 2000
        answers = read_answers(sock, 2000, timeout_s=60)
        sender.join(10)
    assert [a.json()[0] for a in answers[::500]] == [0, 500, 1000, 1500]


async def _open(server: NativeServer) -> list[HttpConnection]:
    return list(server.connections.open)


def test_a_head_larger_than_the_pipelining_buffer_is_still_read(
    make_app: Callable[..., GovfnApp],
) -> None:
    app = make_app(dev=True, function_id="echo")
    limits = Limits(max_body=MAX_BODY, max_buffered=16 * 1024)
    extra = [f"X-Field-{i}: {'v' * 8000}" for i in range(40)]  # a 320 kB head, within limits
    with native_server(app, limits) as server, server.connect() as sock:
        sock.sendall(event("large-head", b"[1]", *extra) + event("then", b"[2]"))
        first, second = read_answers(sock, 2)
    assert (first.json(), second.json()) == ([1], [2])
