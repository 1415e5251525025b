"""The pieces govfn's worker serves HTTP with: what a request is, what answers it, the
limits a connection works under, and the set of a worker's open connections.

`Connections` closes connections that stay idle or leave a request unfinished past their
deadline (keep-alive timeout, slow heads and bodies), and closes idle ones at once when
the worker drains. Each connection is a `govfn.server.connection.HttpConnection`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol

from govfn.receiver.linger import LINGER_IDLE_S, LINGER_MAX_BYTES, LINGER_S
from govfn.server.wire import RequestHead

Reply = tuple[str, list[tuple[str, str]], bytes]  # WSGI-style status text, headers, body


class Request:
    """A request read in full: its head, its body, and the two ends of its connection."""

    __slots__ = ("body", "head", "local", "peer")

    def __init__(
        self, head: RequestHead, body: bytes, peer: tuple[str, int], local: tuple[str, int]
    ) -> None:
        self.head = head
        self.body = body
        self.peer = peer
        self.local = local


class Handler(Protocol):
    def handle(self, request: Request) -> Awaitable[Reply]: ...

    def too_large(self, head: RequestHead, declared: int | None, limit: int) -> Reply: ...


class OpenConnection(Protocol):
    """What `Connections` asks of a connection (`connection.HttpConnection` is one)."""

    @property
    def idle(self) -> bool: ...

    def expired(self, now: float) -> bool: ...

    def close(self) -> None: ...


class Limits:
    """How much a connection may send, and how long it may take."""

    __slots__ = (
        "body_timeout_s",
        "keepalive_s",
        "linger_idle_s",
        "linger_max_bytes",
        "linger_s",
        "max_body",
        "max_buffered",
        "max_connections",
    )

    def __init__(
        self,
        max_body: int,
        keepalive_s: float = 5.0,
        body_timeout_s: float = 30.0,
        max_connections: int = 1000,
        max_buffered: int = 256 * 1024,  # pipelined bytes held while a request is answered
        linger_s: float = LINGER_S,  # after an early answer (govfn.receiver.linger)
        linger_idle_s: float = LINGER_IDLE_S,
        linger_max_bytes: int = LINGER_MAX_BYTES,
    ) -> None:
        self.max_body = max_body
        self.keepalive_s = keepalive_s
        self.body_timeout_s = body_timeout_s
        self.max_connections = max_connections
        self.max_buffered = max_buffered
        self.linger_s = linger_s
        self.linger_idle_s = linger_idle_s
        self.linger_max_bytes = linger_max_bytes


class Connections:
    """The open connections of a worker: their count, deadlines, and draining."""

    def __init__(self, loop: asyncio.AbstractEventLoop, handler: Handler, limits: Limits):
        self.loop = loop
        self.handler = handler
        self.limits = limits
        self.open: set[OpenConnection] = set()
        self.running: set[asyncio.Task[None]] = set()  # requests being answered
        self.draining = False
        self.requests = 0

    @property
    def idle(self) -> bool:
        """No connection open and no request being answered (its client may have left)."""
        return not self.open and not self.running

    def sweep(self) -> None:
        """Close connections past their deadline."""
        now = self.loop.time()
        for connection in list(self.open):
            if connection.expired(now):
                connection.close()

    def drain(self) -> None:
        """Stop keeping connections alive; close those with no request under way."""
        self.draining = True
        for connection in list(self.open):
            if connection.idle:
                connection.close()

    def close_all(self) -> None:
        for connection in list(self.open):
            connection.close()
