"""`govfn serve --single-process` takes over the socket `govfn serve` bound as gunicorn
takes over `bind = fd://N`: on a descriptor of its own, with the same socket options."""

from __future__ import annotations

import os
import socket

import pytest

from govfn.cli.preflight import listen
from govfn.server.single_process import adopt_listener


def test_the_adopted_listener_has_gunicorns_socket_options() -> None:
    host = "127.0.0.1"
    bound = listen(host, 0)
    port = bound.getsockname()[1]
    fd = bound.detach()
    with adopt_listener(fd) as listener:
        assert listener.fileno() != fd
        with pytest.raises(OSError):
            os.fstat(fd)  # the descriptor handed over is closed
        assert listener.getsockname()[1] == port
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert not listener.getblocking()
        assert not listener.get_inheritable()
        with socket.create_connection((host, port), timeout=5):
            pass  # it still accepts into its queue
