"""govfn's gunicorn worker: a `LoopServer` in each worker process gunicorn forks.

    gunicorn -k govfn.server.worker.GovfnWorker 'govfn.app:create_app()'   (govfn serve's default)

gunicorn stays the process manager (arbiter, fork, heartbeat, signals); the worker runs
`govfn.server.loop_server.LoopServer` on gunicorn's listening sockets with gunicorn's
settings, and adds what an arbiter asks of it: the heartbeat, leaving when its parent
changes, restarting after `max_requests`, and the `worker_int` / `worker_abort` hooks.
"""

from __future__ import annotations

import os
import time
from typing import Any

from gunicorn.workers.base import Worker

from govfn.server.loop_server import LoopServer, ServingHooks, ServingOptions


class GovfnWorker(Worker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server: LoopServer | None = None
        self._heartbeat_s = self.timeout / 2 if self.timeout > 0 else 1.0
        self._notified = float("-inf")

    def init_process(self) -> None:
        cfg = self.cfg
        options = ServingOptions(
            threads=cfg.threads,
            workers=cfg.workers,
            keepalive_s=float(cfg.keepalive),
            max_connections=cfg.worker_connections,
            backlog=cfg.backlog,
            graceful_timeout_s=float(cfg.graceful_timeout),
        )
        hooks = ServingHooks(
            on_tick=self._tick,
            on_quick_exit=lambda: cfg.worker_int(self),
            on_abort=lambda: cfg.worker_abort(self),
            reopen_logs=self.log.reopen_files,
        )
        self.server = LoopServer([listener.sock for listener in self.sockets], options, hooks)
        super().init_process()

    def init_signals(self) -> None:
        assert self.server is not None
        self.server.install_signals()

    def run(self) -> None:
        assert self.server is not None
        self.server.run(self.wsgi)

    def _tick(self) -> None:
        server = self.server
        assert server is not None
        now = time.monotonic()
        if now - self._notified >= self._heartbeat_s:
            self.notify()
            self._notified = now
        if self.ppid != os.getppid():
            self.log.info("Parent changed, shutting down: %s", self)
            server.stop_gracefully()
        connections = server.connections
        if connections is not None and connections.requests >= self.max_requests and server.alive:
            self.log.info("Autorestarting worker after current request.")
            server.stop_gracefully()
