"""One HTTP/1.1 connection on the worker's event loop: an `asyncio.Protocol`.

Reads a request head (bounded: 414, 431, 400), then its body by Content-Length or chunked
(bounded by the body limit: 413), answers `Expect: 100-continue`, hands the request to the
`Handler` and writes its reply. Requests on a connection are answered in order, one at a
time: pipelined requests wait in the buffer, and reading pauses when too much waits.
HTTP/1.0 and `Connection: close` close after the reply.

An answer given before the request is read in full (413, and the 4xx of a request that
cannot be read) closes with a lingering close (RFC 9112 §9.6, `govfn.receiver.linger`): the
answer, then a FIN (`write_eof`, shutdown(SHUT_WR) once the answer is flushed), then what
the client still sends is read and discarded until it closes its side or a bound is reached
(`Limits.linger_*`; the worker's sweep closes a connection past its linger deadline).
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from govfn.problem import HttpProblem, status_line
from govfn.server.chunked import BodyTooLarge, ChunkedBody
from govfn.server.protocol import Connections, Reply, Request
from govfn.server.wire import (
    MAX_FIELD_SIZE,
    MAX_HEADER_FIELDS,
    MAX_REQUEST_LINE,
    RequestHead,
    WireError,
    parse_head,
    response_head,
)

log = logging.getLogger("govfn.server")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_HEAD, _BODY, _CHUNKED, _BUSY, _CLOSED, _LINGER = range(6)


class HttpConnection(asyncio.Protocol):
    def __init__(self, connections: Connections) -> None:
        self.connections = connections
        self.loop = connections.loop
        self.handler = connections.handler
        self.limits = connections.limits
        self.transport: asyncio.Transport | None = None
        self.state = _HEAD
        self.buffer = b""
        self.deadline = 0.0
        self.peer: tuple[str, int] = ("", 0)
        self.local: tuple[str, int] = ("", 0)
        self._scanned = 0  # bytes of a partial head already checked line by line
        self._fields = 0
        self._head: RequestHead | None = None
        self._body = bytearray()
        self._need = 0
        self._chunked: ChunkedBody | None = None
        self._reading = True
        self._writing = True
        self._eof = False
        self._linger_end = 0.0
        self._discarded = 0

    def expired(self, now: float) -> bool:
        """Past its deadline with no request being answered."""
        return self.deadline < now and self.state != _BUSY

    @property
    def idle(self) -> bool:
        """Between requests, nothing of the next one read."""
        return self.state == _HEAD and not self.buffer

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport, only alike).
        self.transport = cast(asyncio.Transport, transport)
        self.peer = _address(transport.get_extra_info("peername"))
        self.local = _address(transport.get_extra_info("sockname"))
        self.deadline = self.loop.time() + self.limits.keepalive_s
        connections = self.connections
        connections.open.add(self)
        if len(connections.open) > self.limits.max_connections:
            self._fail(503, "too many connections; retry later", linger=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.open.discard(self)
        if self.state != _BUSY:
            self.state = _CLOSED
        self.transport = None

    def eof_received(self) -> bool:
        # A client that half-closes after its request still gets the reply, then the close;
        # a lingering connection closes now (False: the transport closes itself).
        self._eof = True
        return self.state == _BUSY

    def pause_writing(self) -> None:
        self._writing = False

    def resume_writing(self) -> None:
        self._writing = True
        if self.state == _HEAD:
            self._process()
            self._resume_reading()

    def _resume_reading(self) -> None:
        if self._reading or self.transport is None:
            return
        waiting = self.state == _BUSY or not self._writing  # the buffer cannot be worked off
        if not waiting or len(self.buffer) <= self.limits.max_buffered:
            self._reading = True
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state == _HEAD:
            self.buffer = self.buffer + data if self.buffer else data
            if self._writing:
                self._process()
            self._hold()
        elif state == _BODY:
            self._body += data
            if len(self._body) >= self._need:
                self._body_complete()
        elif state == _CHUNKED:
            self._feed_chunks(data)
        elif state == _BUSY:
            self.buffer = self.buffer + data if self.buffer else data
            self._hold()
        elif state == _LINGER:
            self._discarded += len(data)
            if self._discarded > self.limits.linger_max_bytes:
                self.close()
            else:
                self.deadline = min(self._linger_end, self.loop.time() + self.limits.linger_idle_s)

    def _hold(self) -> None:
        """Stop reading while more than `max_buffered` bytes wait for their turn (a request
        being answered, or replies the client does not read); a head still arriving is not
        held back: its own limits bound it."""
        waiting = self.state == _BUSY or not self._writing
        if self._reading and waiting and len(self.buffer) > self.limits.max_buffered:
            self._reading = False
            if self.transport is not None:
                self.transport.pause_reading()

    # -- reading requests ---------------------------------------------------------------

    def _process(self) -> None:
        """Start the next request in the buffer, if it is all there."""
        if not self._writing or self.state != _HEAD:
            return
        buffer = self.buffer
        while buffer[:2] == b"\r\n":  # empty lines before a request line are ignored
            buffer = buffer[2:]
        self.buffer = buffer
        if not buffer:
            return
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            try:
                self._check_partial_head(buffer)
            except WireError as error:
                self._fail(error.status, error.detail, error.attribute)
            return
        self._scanned = self._fields = 0
        try:
            head = parse_head(buffer[:end])
        except WireError as error:
            self._fail(error.status, error.detail, error.attribute)
            return
        rest = buffer[end + 4 :]
        self.buffer = b""
        length = head.content_length
        if length is not None and length > self.limits.max_body:
            self._refuse_too_large(head, length)
            return
        self._head = head
        if head.expect_continue and (length or head.chunked) and not rest:
            self._write(_CONTINUE)
        if head.chunked:
            self._chunked = ChunkedBody(self.limits.max_body)
            self.state = _CHUNKED
            self.deadline = self.loop.time() + self.limits.body_timeout_s
            self._feed_chunks(rest)
        elif length:
            self._body = bytearray(rest)
            self._need = length
            self.state = _BODY
            self.deadline = self.loop.time() + self.limits.body_timeout_s
            if len(rest) >= length:
                self._body_complete()
        else:
            self.buffer = rest
            self._dispatch(head, b"")

    def _check_partial_head(self, buffer: bytes) -> None:
        position = self._scanned
        while True:
            newline = buffer.find(b"\n", position)
            if newline < 0:
                break
            if newline == 0 or buffer[newline - 1] != 0x0D:
                raise WireError(400, "bare LF in the request head")
            if position == 0:
                if newline - 1 > MAX_REQUEST_LINE:
                    raise WireError(414, "request line too long")
            else:
                self._fields += 1
                if newline - 1 - position > MAX_FIELD_SIZE:
                    raise WireError(431, "header field too long")
                if self._fields > MAX_HEADER_FIELDS:
                    raise WireError(431, f"more than {MAX_HEADER_FIELDS} header fields")
            position = newline + 1
        self._scanned = position
        pending = len(buffer) - position
        if position == 0 and pending > MAX_REQUEST_LINE + 1:
            raise WireError(414, "request line too long")
        if position > 0 and pending > MAX_FIELD_SIZE + 1:
            raise WireError(431, "header field too long")

    def _body_complete(self) -> None:
        head = self._head
        assert head is not None
        body = bytes(self._body)
        self._body = bytearray()
        need = self._need
        if len(body) > need:
            self.buffer = body[need:]
            body = body[:need]
        self._dispatch(head, body)

    def _feed_chunks(self, data: bytes) -> None:
        decoder = self._chunked
        head = self._head
        assert decoder is not None and head is not None
        try:
            rest = decoder.feed(data)
        except WireError as error:
            self._fail(error.status, error.detail, error.attribute)
            return
        except BodyTooLarge:
            self._refuse_too_large(head, None)
            return
        if rest is None:
            return
        self._chunked = None
        self.buffer = rest
        self._dispatch(head, bytes(decoder.body))

    # -- answering ----------------------------------------------------------------------

    def _dispatch(self, head: RequestHead, body: bytes) -> None:
        self.state = _BUSY
        self._head = None
        self.connections.requests += 1
        request = Request(head, body, self.peer, self.local)
        task = self.loop.create_task(self._respond(request))
        running = self.connections.running
        running.add(task)
        task.add_done_callback(running.discard)

    async def _respond(self, request: Request) -> None:
        try:
            reply = await self.handler.handle(request)
        except Exception:
            log.exception("request %s %s failed", request.head.method, request.head.path)
            problem = HttpProblem(500, "internal error; see the server log")
            reply = ("500 Internal Server Error", problem.headers(), problem.to_bytes())
        self._reply(request.head, reply)

    def _reply(self, head: RequestHead, reply: Reply) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            self.state = _CLOSED
            return
        status, headers, body = reply
        keep_alive = head.keep_alive and not self.connections.draining and not self._eof
        try:
            data = response_head(status, headers, len(body), keep_alive)
        except UnicodeEncodeError:
            log.error("reply to %s %s has a header that is not Latin-1", head.method, head.path)
            self._fail(500, "internal error; see the server log")
            return
        if head.method != "HEAD":
            data += body
        transport.write(data)
        if not keep_alive:
            self.state = _CLOSED
            transport.close()
            return
        self.state = _HEAD
        self.deadline = self.loop.time() + self.limits.keepalive_s
        if self.buffer:
            self._process()
        if self._writing:
            self._resume_reading()

    def _refuse_too_large(self, head: RequestHead, declared: int | None) -> None:
        status, headers, body = self.handler.too_large(head, declared, self.limits.max_body)
        self._write(response_head(status, headers, len(body), keep_alive=False) + body)
        self._linger()

    def _fail(
        self, status: int, detail: str, attribute: str | None = None, *, linger: bool = True
    ) -> None:
        """Answer a request that cannot be read, then close (lingering, unless told not to)."""
        problem = HttpProblem(status, detail, attribute=attribute)
        body = problem.to_bytes()
        self._write(response_head(status_line(status), problem.headers(), len(body), False) + body)
        if linger:
            self._linger()
        else:
            self.close()

    def _linger(self) -> None:
        """FIN after the answer, then read and discard until the client closes or a bound."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._eof:
            self.close()
            return
        if not transport.can_write_eof():
            self.close()
            return
        self.state = _LINGER
        self.buffer, self._body, self._chunked, self._head = b"", bytearray(), None, None
        now = self.loop.time()
        self._linger_end = now + self.limits.linger_s
        self.deadline = min(self._linger_end, now + self.limits.linger_idle_s)
        transport.write_eof()
        if not self._reading:
            self._reading = True
            transport.resume_reading()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.state != _BUSY:
            self.state = _CLOSED
        if self.transport is not None:
            self.transport.close()


def _address(value: object) -> tuple[str, int]:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return (str(value) if value else "", 0)
