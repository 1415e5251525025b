"""A TCP proxy on loopback between the pods and PostgreSQL: it can slow every byte down
(`latency_s`, applied to each chunk in each direction, so a query's round trip gains twice
that) and cut every connection at once (`cut()`, as a proxy restart or a failover does).

    proxy = TcpProxy(database.port)   # pods connect to 127.0.0.1:proxy.port
    proxy.latency_s = 0.1
    proxy.cut()
    proxy.close()

One thread accepts, two threads pump each connection; every socket is closed by `close()`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

_ACCEPT_POLL_S = 0.2
_CONNECT_TIMEOUT_S = 5.0


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.latency_s = 0.0
        self.connections = 0  # accepted so far
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_ACCEPT_POLL_S)
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._start(self._accept)

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            try:
                upstream = socket.create_connection(self.target, timeout=_CONNECT_TIMEOUT_S)
            except OSError:
                client.close()  # the database is down: the client sees a reset, as without us
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self.connections += 1
                self._open.update((client, upstream))
            self._start(self._pump, client, upstream)
            self._start(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                delay = self.latency_s
                if delay > 0:
                    time.sleep(delay)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            self._drop(source, sink)

    def _drop(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with self._lock:
                self._open.discard(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut(self) -> int:
        """Close every open connection (both sides); returns how many pairs were cut."""
        with self._lock:
            sockets = list(self._open)
        self._drop(*sockets)
        return len(sockets) // 2

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self.cut()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=2)
