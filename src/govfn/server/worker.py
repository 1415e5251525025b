"""govfn's gunicorn worker: one event loop (uvloop's) per worker process serves HTTP/1.1.

    gunicorn -k govfn.server.worker.GovfnWorker 'govfn.app:create_app()'   (govfn serve's default)

gunicorn stays the process manager (arbiter, fork, heartbeat, signals), except under
`govfn serve --single-process`, where the serving process is this worker. Each worker runs
one event loop with `govfn.server.connection` on gunicorn's listening sockets: receivers and
health probes are answered on the loop, where the runtime invokes functions (the app's
`LoopThread` is attached to this loop, so there is no second loop and no thread hop);
other requests run as WSGI in a pool of `--threads` threads.

SIGTERM drains: readiness turns false, listening stops, idle connections close, requests
under way finish (up to the graceful timeout), then the app hands kept Chronicle records
and the sink's outbox over and the worker exits 0. SIGINT and SIGQUIT exit at once.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from types import FrameType
from typing import Any

from gunicorn.workers.base import Worker

from govfn.app import GovfnApp
from govfn.lifecycle import worker_started, worker_stopping
from govfn.receiver.config import DEFAULT_MAX_BODY
from govfn.server.connection import HttpConnection
from govfn.server.handler import WorkerHandler
from govfn.server.protocol import Connections, Limits

TICK_S = 1.0  # how often deadlines are checked and the arbiter's heartbeat is due
ACCEPT_BATCH = 1  # connections taken per wake-up, so that workers share a socket fairly


class GovfnWorker(Worker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.quick_exit = False
        self.supervised = True  # False under `govfn serve --single-process`: no arbiter
        self._stop: asyncio.Event | None = None

    def init_process(self) -> None:
        self.loop = new_event_loop()
        asyncio.set_event_loop(self.loop)
        super().init_process()

    def init_signals(self) -> None:
        # Until the loop runs, the interpreter runs the actions itself: it checks for signals
        # between bytecodes, and it is running the app's start-up then. `_serve` hands them
        # to the loop once it runs. Handed over before it runs, a signal sent during start-up
        # would wait under uvloop for a second one: uvloop points the signal wakeup fd at
        # itself only while it runs, and it reads the signals it caught only when woken.
        for number in self.SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        for number, action in self._signal_actions().items():
            signal.signal(number, _run_at_once(action))
            signal.siginterrupt(number, False)

    def _signal_actions(self) -> dict[signal.Signals, Callable[[], object]]:
        return {
            signal.SIGTERM: self._stop_gracefully,
            signal.SIGQUIT: self._stop_at_once,
            signal.SIGINT: self._stop_at_once,
            signal.SIGUSR1: self.log.reopen_files,
            signal.SIGWINCH: _ignore,
            signal.SIGABRT: self._abort,
        }

    def run(self) -> None:
        loop = self.loop
        assert loop is not None
        app = self.wsgi
        govfn = app if isinstance(app, GovfnApp) else None
        if govfn is not None:
            govfn.loop.attach(loop)
            worker_started(govfn, drain_on_sigterm=False, pod_of_one=self.cfg.workers == 1)
        pool = ThreadPoolExecutor(self.cfg.threads, thread_name_prefix="govfn-wsgi")
        handler = WorkerHandler(app, pool, loop, multiprocess=self.cfg.workers > 1)
        limits = Limits(
            max_body=govfn.config.max_body_bytes if govfn else DEFAULT_MAX_BODY,
            keepalive_s=float(self.cfg.keepalive) or 5.0,
            max_connections=self.cfg.worker_connections,
        )
        connections = Connections(loop, handler, limits)
        gc.freeze()  # what the app built before serving is never collected: shorter pauses
        gc.enable()  # `govfn serve` starts with cyclic collection off
        try:
            loop.run_until_complete(self._serve(connections, govfn))
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
        for listener in self.sockets:
            server = await loop.create_server(
                partial(HttpConnection, connections), sock=listener.sock, backlog=ACCEPT_BATCH
            )
            listener.sock.listen(self.cfg.backlog)  # the kernel queue stays gunicorn's
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
        deadline = loop.time() + max(self.cfg.graceful_timeout - 1.0, 0.5)
        while not connections.idle and not self.quick_exit and loop.time() < deadline:
            await asyncio.sleep(0.05)
        ticker.cancel()
        connections.close_all()
        await asyncio.sleep(0)  # let the transports close

    async def _tick(self, connections: Connections) -> None:
        interval = min(TICK_S, connections.limits.keepalive_s / 4)
        heartbeat = self.timeout / 2 if self.timeout > 0 else TICK_S
        loop = asyncio.get_running_loop()
        notified = loop.time()
        self.notify()
        while True:
            await asyncio.sleep(interval)
            connections.sweep()
            now = loop.time()
            if now - notified >= heartbeat:
                self.notify()
                notified = now
            if self.supervised and self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                self._stop_gracefully()
            if connections.requests >= self.max_requests and self.alive:
                self.log.info("Autorestarting worker after current request.")
                self._stop_gracefully()

    def _stop_gracefully(self) -> None:
        self.alive = False
        if self._stop is not None:
            self._stop.set()

    def _stop_at_once(self) -> None:
        self.quick_exit = True
        self.alive = False
        self.cfg.worker_int(self)
        if self._stop is not None:
            self._stop.set()

    def _abort(self) -> None:
        self.alive = False
        self.cfg.worker_abort(self)
        sys.exit(1)


def _run_at_once(action: Callable[[], object]) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        action()

    return handler


def _ignore() -> None:
    """SIGWINCH: a terminal's size is nothing to a worker."""


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (libuv: its transports and its ready queue
    are C), else asyncio's own. Imported here, after the fork: the arbiter never needs it."""
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
