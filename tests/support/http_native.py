"""govfn's worker protocol in-process: a loop thread serving `Connections` on loopback, and
a raw-socket client that reads answers framed by Content-Length."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from govfn.app import GovfnApp
from govfn.server.connection import HttpConnection
from govfn.server.handler import WorkerHandler
from govfn.server.protocol import Connections, Limits, Reply, Request

from support.http_wire import Answer


@dataclass
class NativeServer:
    port: int
    app: GovfnApp
    connections: Connections
    loop: asyncio.AbstractEventLoop
    handled: list[Request] = field(default_factory=list)

    def connect(self, timeout_s: float = 5.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s)

    def open_count(self) -> int:
        return asyncio.run_coroutine_threadsafe(_count(self.connections), self.loop).result(5)


async def _count(connections: Connections) -> int:
    return len(connections.open)


class RecordingHandler(WorkerHandler):
    """The worker's handler, keeping the requests it was given."""

    def __init__(self, *args: object, handled: list[Request], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.handled = handled

    async def handle(self, request: Request) -> Reply:
        self.handled.append(request)
        return await super().handle(request)


@contextlib.contextmanager
def native_server(app: GovfnApp, limits: Limits) -> Iterator[NativeServer]:
    """Serve `app` as govfn's worker does, on a loop of its own thread; the app's
    LoopThread is attached to that loop."""
    loop = asyncio.new_event_loop()
    pool = ThreadPoolExecutor(2, thread_name_prefix="test-wsgi")
    handled: list[Request] = []
    handler = RecordingHandler(app, pool, loop, handled=handled)
    connections = Connections(loop, handler, limits)
    started = threading.Event()
    stop: list[asyncio.Event] = []
    ports: list[int] = []

    async def serve() -> None:
        stop.append(asyncio.Event())
        server = await loop.create_server(partial(HttpConnection, connections), "127.0.0.1", 0)
        ports.append(server.sockets[0].getsockname()[1])
        started.set()
        while not stop[0].is_set():
            connections.sweep()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop[0].wait(), 0.05)
        server.close()
        connections.close_all()
        await asyncio.sleep(0)

    def run() -> None:
        asyncio.set_event_loop(loop)
        app.loop.attach(loop)
        loop.run_until_complete(serve())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield NativeServer(ports[0], app, connections, loop, handled)
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
        pool.shutdown(wait=True)
        app.loop.stop()
        loop.close()


def read_answers(sock: socket.socket, count: int, timeout_s: float = 5.0) -> list[Answer]:
    """`count` answers from `sock`, each framed by its Content-Length."""
    buffer = b""
    answers: list[Answer] = []
    deadline = time.monotonic() + timeout_s
    while len(answers) < count:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(buffer) >= end + 4 + length:
                body = buffer[end + 4 : end + 4 + length]
                answers.append(Answer(int(head[0].split(" ")[1]), headers, body))
                buffer = buffer[end + 4 + length :]
                continue
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(answers)} of {count} answers; left: {buffer[:200]!r}")
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"closed after {len(answers)} of {count} answers")
        buffer += chunk
    return answers


def closed_by_peer(sock: socket.socket, timeout_s: float) -> bool:
    """True when the server closes `sock` (after any answer) within `timeout_s`."""
    sock.settimeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False
