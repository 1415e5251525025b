"""Answers given before the request's body is read, and the lingering close that lets them
arrive (RFC 9112 §9.6; nginx's `lingering_close`).

A client that writes its whole body before it reads (Python's `http.client`, and Knative's
dispatcher while it is still writing) would otherwise get a connection reset instead of the
answer: closing a socket with unread data makes the kernel send RST, and the client's
kernel then drops the answer it had already received. So a server that answers early
sends the answer, shuts down its sending side (the FIN tells the client no more is
coming), reads and discards what the client still sends, and closes once the client has
closed its side or a bound is reached:

- `LINGER_S`: at most this long in all,
- `LINGER_IDLE_S`: at most this long without a byte from the client,
- `LINGER_MAX_BYTES`: at most this many bytes discarded.

govfn's own worker does this on its event loop (`govfn.server.connection`). On the WSGI
path (`govfn serve --worker-class gthread`, or any gunicorn serving `create_app()`) the
receivers answer early with a `LingeringAnswer`: the server writes the answer, then asks
the iterable for more, and it shuts down the sending side (through `gunicorn.socket`, when
the server is gunicorn) and reads `wsgi.input` to its end, within the same bounds. It does
so only when the unread body may be larger than the `SMALL_REST` gunicorn reads off itself
before keeping the connection alive; a small one is left to gunicorn, and the connection
stays open for the next request.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

LINGER_S = 30.0
LINGER_IDLE_S = 5.0
LINGER_MAX_BYTES = 64 * 1024 * 1024
SMALL_REST = 64 * 1024  # what gunicorn itself reads off before it keeps a connection alive
_READ_SIZE = 64 * 1024

log = logging.getLogger("govfn.receiver")


def rest_may_be_large(environ: dict[str, Any]) -> bool:
    """Whether an unread body may be more than the server reads off by itself: a small one
    (a 429 to a small event) is left to gunicorn, which keeps that connection alive."""
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared:
        return not declared.isdigit() or int(declared) > SMALL_REST
    encoding = str(environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
    return encoding.rstrip().endswith("chunked")  # of unknown size


class LingeringAnswer:
    """A WSGI response body: the answer, then the rest of the request read and discarded."""

    def __init__(self, payload: bytes, environ: dict[str, Any], start_response: Any) -> None:
        self.payload = payload
        self.environ = environ
        self.discarded = 0
        # The answer closes the connection; gunicorn's Response (start_response's owner) then
        # says `Connection: close`, which a WSGI application may not set itself (PEP 3333).
        force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
        if callable(force_close):
            force_close()

    def __iter__(self) -> Iterator[bytes]:
        yield self.payload
        self.discard()

    def discard(self) -> None:
        """Shut down the sending side and read what the client still sends, within bounds."""
        sock = self.environ.get("gunicorn.socket")
        if not isinstance(sock, socket.socket):
            sock = None
        prior = sock.gettimeout() if sock is not None else None
        stream = self.environ["wsgi.input"]
        started = time.monotonic()
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_WR)
            while self.discarded < LINGER_MAX_BYTES:
                left = LINGER_S - (time.monotonic() - started)
                if left <= 0:
                    break
                if sock is not None:
                    sock.settimeout(min(left, LINGER_IDLE_S))
                data = stream.read(min(_READ_SIZE, LINGER_MAX_BYTES - self.discarded))
                if not data:
                    break
                self.discarded += len(data)
        except Exception as exc:  # the client left, stalled or sent garbage: stop lingering
            log.debug("lingering stopped after %d bytes: %r", self.discarded, exc)
        finally:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.settimeout(prior)
