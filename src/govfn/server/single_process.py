"""`govfn serve --single-process`: one process binds and serves, with no gunicorn at all.

What a Knative pod runs: one container, one process, restarted by the kubelet when it
exits. The process serves as gunicorn's worker would have after its arbiter forked it (the
same `LoopServer`, listening socket options, limits, signals and graceful stop) without
importing gunicorn, whose modules (with `email` and `importlib.metadata`) cost every cold
start ~25 ms of CPU and the pod ~3 MB.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from govfn.server.gunicorn_log import LOGGER_NAME
from govfn.server.loop_server import LoopServer, ServingOptions


def adopt_listener(fd: int) -> socket.socket:
    """The listening socket bound on `fd`, set up as gunicorn sets up a socket it inherits
    (`bind = fd://N`): on a descriptor of its own (`fd` is closed), address reuse, no Nagle
    delay on TCP, non-blocking, and not inherited by programs the process starts."""
    duplicate = os.dup(fd)
    os.close(fd)
    listener = socket.socket(fileno=duplicate)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if listener.family in (socket.AF_INET, socket.AF_INET6):
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.setblocking(False)
    listener.set_inheritable(False)
    return listener


def serve_single_process(app: Any, fd: int, options: ServingOptions, log_level: str) -> None:
    """Serve `app` on the socket bound on `fd` until a signal stops it; `log_level` is the
    level of the `govfn.gunicorn` logger, as gunicorn's `loglevel` sets it."""
    logging.getLogger(LOGGER_NAME).setLevel(log_level.upper())
    server = LoopServer([adopt_listener(fd)], options)
    server.install_signals()
    server.run(app)
