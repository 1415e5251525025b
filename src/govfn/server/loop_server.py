"""govfn's HTTP/1.1 server on one event loop (uvloop's), knowing nothing of gunicorn.

It serves an app on listening sockets it is given: receivers and health probes are
answered on the loop, where the runtime invokes functions (the app's `LoopThread` is
attached to this loop, so there is no second loop and no thread hop); other requests run
as WSGI in a pool of `threads` threads. gunicorn's worker (`govfn.server.worker`) runs one
per worker process; `govfn serve --single-process` runs one itself
(`govfn.server.single_process`), without importing gunicorn.

SIGTERM drains: readiness turns false, listening stops, idle connections close, requests
under way finish (up to the graceful timeout), then the app hands kept Chronicle records
and the sink's outbox over and `run` returns. SIGINT and SIGQUIT stop at once; SIGABRT
exits 1; SIGUSR1 reopens log files; SIGWINCH is ignored; the other signals gunicorn's
worker resets (SIGHUP, SIGUSR2, SIGCHLD) keep their default action.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Any

from govfn.app import GovfnApp
from govfn.lifecycle import worker_started, worker_stopping
from govfn.receiver.config import DEFAULT_MAX_BODY
from govfn.server.connection import HttpConnection
from govfn.server.handler import WorkerHandler
from govfn.server.protocol import Connections, Limits

TICK_S = 1.0  # how often deadlines are checked (and the arbiter's heartbeat is due)
ACCEPT_BATCH = 1  # connections taken per wake-up, so that workers share a socket fairly

# What gunicorn's worker resets to the default action before it installs its own handlers.
RESET_SIGNALS = (
    signal.SIGABRT, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT, signal.SIGTERM,
    signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCHLD,
)  # fmt: skip


def _nothing() -> None:
    """A hook left unset."""


@dataclass(frozen=True)
class ServingOptions:
    """How a `LoopServer` serves: gunicorn's settings of the same names, in its units."""

    threads: int = 8  # WSGI threads for what is not answered on the loop
    workers: int = 1  # processes serving the same sockets (WSGI's `wsgi.multiprocess`)
    keepalive_s: float = 5.0
    max_connections: int = 1000
    backlog: int = 2048
    graceful_timeout_s: float = 30.0


@dataclass(frozen=True)
class ServingHooks:
    """What the process around a `LoopServer` adds: `on_tick` runs every tick (and once as
    serving starts), `on_quick_exit` on SIGINT and SIGQUIT, `on_abort` on SIGABRT before
    the exit, `reopen_logs` on SIGUSR1."""

    on_tick: Callable[[], None] = _nothing
    on_quick_exit: Callable[[], None] = _nothing
    on_abort: Callable[[], None] = _nothing
    reopen_logs: Callable[[], None] = _nothing


class LoopServer:
    def __init__(
        self,
        listeners: Sequence[socket.socket],
        options: ServingOptions,
        hooks: ServingHooks | None = None,
    ) -> None:
        self.listeners = list(listeners)
        self.options = options
        self.hooks = hooks or ServingHooks()
        self.loop = new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.alive = True
        self.quick_exit = False
        self.connections: Connections | None = None
        self._stop: asyncio.Event | None = None

    def install_signals(self) -> None:
        # Until the loop runs, the interpreter runs the actions itself: it checks for signals
        # between bytecodes, and it is running the app's start-up then. `_serve` hands them
        # to the loop once it runs. Handed over before it runs, a signal sent during start-up
        # would wait under uvloop for a second one: uvloop points the signal wakeup fd at
        # itself only while it runs, and it reads the signals it caught only when woken.
        for number in RESET_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        for number, action in self._signal_actions().items():
            signal.signal(number, _run_at_once(action))
            signal.siginterrupt(number, False)

    def _signal_actions(self) -> dict[signal.Signals, Callable[[], object]]:
        return {
            signal.SIGTERM: self.stop_gracefully,
            signal.SIGQUIT: self._stop_at_once,
            signal.SIGINT: self._stop_at_once,
            signal.SIGUSR1: self.hooks.reopen_logs,
            signal.SIGWINCH: _ignore,
            signal.SIGABRT: self._abort,
        }

    def run(self, app: Any) -> None:
        """Serve `app` (a `GovfnApp`, or any WSGI app) until a signal stops it."""
        loop = self.loop
        options = self.options
        govfn = app if isinstance(app, GovfnApp) else None
        if govfn is not None:
            govfn.loop.attach(loop)
            worker_started(govfn, drain_on_sigterm=False, pod_of_one=options.workers == 1)
        pool = ThreadPoolExecutor(options.threads, thread_name_prefix="govfn-wsgi")
        handler = WorkerHandler(app, pool, loop, multiprocess=options.workers > 1)
        limits = Limits(
            max_body=govfn.config.max_body_bytes if govfn else DEFAULT_MAX_BODY,
            keepalive_s=options.keepalive_s or 5.0,
            max_connections=options.max_connections,
        )
        self.connections = Connections(loop, handler, limits)
        gc.freeze()  # what the app built before serving is never collected: shorter pauses
        gc.enable()  # `govfn serve` starts with cyclic collection off
        try:
            loop.run_until_complete(self._serve(self.connections, govfn))
        finally:
            pool.shutdown(wait=not self.quick_exit, cancel_futures=True)
            if govfn is not None:
                worker_stopping(govfn, drain_timeout_s=1.0 if self.quick_exit else 5.0)
            _close_loop(loop)

    async def _serve(self, connections: Connections, govfn: GovfnApp | None) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for number, action in self._signal_actions().items():
            loop.add_signal_handler(number, action)
        servers = []
        for listener in self.listeners:
            server = await loop.create_server(
                partial(HttpConnection, connections), sock=listener, backlog=ACCEPT_BATCH
            )
            listener.listen(self.options.backlog)  # the kernel queue keeps its own length
            servers.append(server)
        ticker = loop.create_task(self._tick(connections))
        if not self.alive:  # a signal came before the loop ran
            self._stop.set()
        await self._stop.wait()

        if govfn is not None:
            govfn.state.begin_draining()
        for server in servers:
            server.close()
        connections.drain()
        deadline = loop.time() + max(self.options.graceful_timeout_s - 1.0, 0.5)
        while not connections.idle and not self.quick_exit and loop.time() < deadline:
            await asyncio.sleep(0.05)
        ticker.cancel()
        connections.close_all()
        await asyncio.sleep(0)  # let the transports close

    async def _tick(self, connections: Connections) -> None:
        interval = min(TICK_S, connections.limits.keepalive_s / 4)
        on_tick = self.hooks.on_tick
        on_tick()
        while True:
            await asyncio.sleep(interval)
            connections.sweep()
            on_tick()

    def stop_gracefully(self) -> None:
        self.alive = False
        if self._stop is not None:
            self._stop.set()

    def _stop_at_once(self) -> None:
        self.quick_exit = True
        self.alive = False
        self.hooks.on_quick_exit()
        if self._stop is not None:
            self._stop.set()

    def _abort(self) -> None:
        self.alive = False
        self.hooks.on_abort()
        sys.exit(1)


def _run_at_once(action: Callable[[], object]) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        action()

    return handler


def _ignore() -> None:
    """SIGWINCH: a terminal's size is nothing to a server."""


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (libuv: its transports and its ready queue
    are C), else asyncio's own. Imported here, once the app is built: gunicorn's arbiter
    never needs it."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
