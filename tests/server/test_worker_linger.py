"""govfn's worker closes after an early answer with a lingering close, in-process on loopback:
the answer, then a FIN, then what the client still sends is read and discarded, until the
client closes its side or a bound (idle time, total time, bytes) is reached."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from govfn.app import GovfnApp
from govfn.server.protocol import Limits

from support.http_native import NativeServer, native_server, read_answers

MAX_BODY = 4096
MiB = 1024 * 1024


def oversized(declared: int) -> bytes:
    return (
        "POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: big\r\n"
        "ce-source: /t\r\nce-type: ECHO_REQUESTED\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()


Serve = Callable[..., AbstractContextManager[NativeServer]]


@pytest.fixture
def serve(make_app: Callable[..., GovfnApp]) -> Serve:
    def start(
        linger_s: float = 30.0, linger_idle_s: float = 5.0, linger_max_bytes: int = 64 * MiB
    ) -> AbstractContextManager[NativeServer]:
        app = make_app(function_id="echo", max_body_bytes=MAX_BODY)
        limits = Limits(
            max_body=MAX_BODY,
            keepalive_s=5.0,
            body_timeout_s=5.0,
            linger_s=linger_s,
            linger_idle_s=linger_idle_s,
            linger_max_bytes=linger_max_bytes,
        )
        return native_server(app, limits)

    return start


def wait_closed(server: NativeServer, within_s: float) -> float:
    """Seconds until the server has no connection open (fails after `within_s`)."""
    started = time.monotonic()
    while server.open_count():
        assert time.monotonic() - started < within_s, "the connection is still open"
        time.sleep(0.02)
    return time.monotonic() - started


def test_fin_after_the_answer_and_the_rest_is_still_read(
    serve: Serve,
) -> None:
    with serve() as server, server.connect() as sock:
        sock.sendall(oversized(8 * MiB) + b"x" * 64 * 1024)
        [answer] = read_answers(sock, 1)
        assert answer.status == 413 and answer.headers["connection"] == "close"
        assert sock.recv(1) == b""  # the FIN: nothing more will come
        sock.sendall(b"x" * (8 * MiB - 64 * 1024))  # no reset: the server still reads
        assert server.open_count() == 1
        sock.shutdown(socket.SHUT_WR)  # the client is done: the server closes at once
        assert wait_closed(server, 2.0) < 1.0


def test_a_client_that_sends_nothing_more_is_closed_after_the_idle_bound(
    serve: Serve,
) -> None:
    with serve(linger_idle_s=0.3) as server, server.connect() as sock:
        sock.sendall(oversized(MiB))
        [answer] = read_answers(sock, 1)
        assert answer.status == 413
        assert 0.2 < wait_closed(server, 3.0) < 2.0


def test_a_trickling_client_is_closed_after_the_total_bound(
    serve: Serve,
) -> None:
    with serve(linger_s=0.6, linger_idle_s=5.0) as server, server.connect() as sock:
        sock.sendall(oversized(MiB))
        [answer] = read_answers(sock, 1)
        assert answer.status == 413
        started = time.monotonic()
        with pytest.raises(OSError):  # reset or broken pipe once the server has closed
            while time.monotonic() - started < 5.0:
                sock.sendall(b"x")
                time.sleep(0.05)
        assert 0.4 < time.monotonic() - started < 3.0


def test_a_client_sending_too_much_is_closed_after_the_byte_bound(
    serve: Serve,
) -> None:
    with serve(linger_max_bytes=MiB) as server, server.connect() as sock:
        sock.sendall(oversized(1024 * MiB))
        [answer] = read_answers(sock, 1)
        assert answer.status == 413
        sent = 0
        with pytest.raises(OSError):
            while sent < 64 * MiB:
                sock.sendall(b"x" * 65536)
                sent += 65536
        assert MiB <= sent < 32 * MiB  # past the bound, well short of what it declared
        wait_closed(server, 2.0)


def test_a_malformed_request_lingers_too(serve: Serve) -> None:
    with serve() as server, server.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n" + b"x" * MiB)
        [answer] = read_answers(sock, 1)
        assert answer.status == 400
        assert sock.recv(1) == b""
        sock.sendall(b"x" * MiB)  # still read, not reset
        sock.shutdown(socket.SHUT_WR)
        wait_closed(server, 2.0)
