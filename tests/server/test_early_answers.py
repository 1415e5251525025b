"""Early answers arrive (RFC 9112 §9.6): a real `govfn serve`, in both serving modes, answers
a body over the limit with 413 before reading it, and a client that writes its whole body
before it reads (Python's `http.client`, as Knative's dispatcher still writing) reads that
413 every time instead of a connection reset."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator

import pytest

from support.http_server import SAMPLE_MODULES, Server, binary_headers, start_server, stop_server

pytestmark = pytest.mark.slow
MODULES = [arg for name in SAMPLE_MODULES for arg in ("--functions", name)]
BIG = b"x" * (12 * 1024 * 1024)  # over the default 10 MiB limit
ROUNDS = 20


@pytest.fixture(scope="module", params=["govfn", "gthread"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(request.param)
    running = start_server(tmp, *MODULES, "--worker-class", request.param)
    yield running
    stop_server(running)


def _post(server: Server, body: bytes | Iterator[bytes], **headers: str) -> tuple[int, bytes]:
    """POST with http.client, which sends the whole body before it reads the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(
            "POST",
            "/functions/echo/events",
            body=body,
            headers={**binary_headers(event_id=f"big-{time.monotonic_ns()}"), **headers},
            encode_chunked=not isinstance(body, bytes),
        )
        answer = connection.getresponse()
        assert answer.getheader("Connection") == "close"
        return answer.status, answer.read()
    finally:
        connection.close()


def test_a_413_reaches_a_client_that_writes_before_it_reads(server: Server) -> None:
    statuses = []
    for _ in range(ROUNDS):
        try:
            status, body = _post(server, BIG)
        except OSError as exc:  # a reset: the answer was lost
            statuses.append(repr(exc))
            continue
        statuses.append(status)
        assert b'"attribute":"content-length"' in body.replace(b" ", b"")
    assert statuses == [413] * ROUNDS


def test_a_chunked_body_over_the_limit_gets_its_413_too(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(12):
            yield b"y" * (1024 * 1024)

    for _ in range(3):
        status, body = _post(server, chunks())
        assert status == 413 and b"body" in body


def test_a_small_early_answer_keeps_the_connection(server: Server) -> None:
    """An early answer to a small body (404: no such function) lingers not: the connection
    stays alive for the next request (gunicorn reads off the small rest itself)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        headers = binary_headers(event_id="small")
        connection.request("POST", "/functions/nope/events", body=b'{"a":1}', headers=headers)
        first = connection.getresponse()
        assert first.status == 404 and first.getheader("Connection", "") != "close"
        first.read()
        sock = connection.sock
        connection.request("POST", "/functions/echo/events", body=b'{"b":2}', headers=headers)
        second = connection.getresponse()
        assert (second.status, second.read()) == (200, b'{"b":2}')
        assert connection.sock is sock  # the same connection
    finally:
        connection.close()


def test_the_server_log_has_no_traceback(server: Server) -> None:
    assert "Traceback" not in server.log_text()
