"""ServerState: readiness, draining, and the per-worker limit on in-flight invocations."""

from __future__ import annotations

import threading


class ServerState:
    """Shared by the receivers, the health endpoints and (later) the shutdown handler.

    Readiness is false while starting and while draining; `begin_draining()` is what a
    SIGTERM handler calls. `try_enter()` / `leave()` bound the work a worker runs at once.
    """

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.starting = True
        self.draining = False
        # One plain lock and a count: a (Bounded)Semaphore is a Condition written in
        # Python, and every receiver request takes and gives back a slot.
        self._count_lock = threading.Lock()
        self._in_flight = 0

    @property
    def ready(self) -> bool:
        return not self.starting and not self.draining

    def mark_started(self) -> None:
        self.starting = False

    def begin_draining(self) -> None:
        self.draining = True

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def try_enter(self) -> bool:
        with self._count_lock:
            if self._in_flight >= self.max_in_flight:
                return False
            self._in_flight += 1
        return True

    def leave(self) -> None:
        with self._count_lock:
            if self._in_flight <= 0:
                raise ValueError("leave() without a matching try_enter()")
            self._in_flight -= 1
