"""The one asyncio event loop of a process: on a thread of its own, or attached.

Under a threaded server (gthread), request threads hand coroutines to a loop running on
its own thread with `run_coroutine_threadsafe` and wait for the result. The loop starts
on first use, so a gunicorn worker starts its own after fork; a loop inherited from a
parent process (its thread did not survive the fork) is replaced, never shared.

Under govfn's own worker the loop is the worker's: `attach(loop)` makes `LoopThread` hand
work to it instead of starting a thread, so a process still has exactly one loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "govfn-loop") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._attached = False

    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop of this process; a thread running one is started on the first call."""
        loop = self._loop
        if loop is not None and self._pid == os.getpid():
            return loop
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._start()
            assert self._loop is not None
            return self._loop

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Use `loop`, which the caller runs, instead of a thread of this object's own."""
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                raise RuntimeError("a loop thread already runs in this process")
            self._loop, self._thread, self._pid = loop, None, os.getpid()
            self._attached = True

    @property
    def attached(self) -> bool:
        return self._attached and self._pid == os.getpid()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and block the calling thread until it is done.

        After `timeout` seconds the coroutine is cancelled and TimeoutError raised. An
        attached loop that is not running (a worker shutting down) runs `coro` itself;
        calling this from the thread that runs the loop is a RuntimeError, not a deadlock.
        """
        loop = self.loop()
        if self.attached and not loop.is_running():
            return loop.run_until_complete(asyncio.wait_for(coro, timeout))
        if _running_loop() is loop:
            coro.close()
            raise RuntimeError("LoopThread.run() called on its own loop; await instead")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    @property
    def started(self) -> bool:
        return self._loop is not None and self._pid == os.getpid()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop's thread; an attached loop is only let go (its owner closes it)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None or self._pid != os.getpid():
                self._loop = self._thread = None
                self._attached = False
                return
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = None

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=serve, name=self.name, daemon=True)
        thread.start()
        ready.wait(10)
        self._loop, self._thread, self._pid = loop, thread, os.getpid()
        self._attached = False


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
