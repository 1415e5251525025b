"""Request deadlines on an event loop: one timer for every request under way.

Every receiver request has the same time limit, so deadlines fall in the order requests
start: a queue of them and one timer, armed for the earliest, do what `asyncio.timeout()`
does with one timer armed and cancelled per request. A request past its deadline has its
task cancelled; `Deadline.expired` then tells that cancellation from any other.
"""

from __future__ import annotations

import asyncio
from collections import deque

_EARLY_S = 0.001  # a timer may fire up to the loop's clock resolution early


class Deadline:
    __slots__ = ("at", "done", "expired", "task")

    def __init__(self, at: float, task: asyncio.Task[object] | None) -> None:
        self.at = at
        self.task = task
        self.done = False
        self.expired = False


class Deadlines:
    """The deadlines of one event loop's requests, all `limit_s` after they start."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit_s: float) -> None:
        self.loop = loop
        self.limit_s = limit_s
        self._queue: deque[Deadline] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> Deadline:
        """The current task's deadline, `limit_s` from now."""
        deadline = Deadline(self.loop.time() + self.limit_s, asyncio.current_task(self.loop))
        self._queue.append(deadline)
        if self._timer is None:
            self._timer = self.loop.call_at(deadline.at, self._expire)
        return deadline

    def finish(self, deadline: Deadline) -> None:
        """The request of `deadline` is answered (or failed): forget it."""
        deadline.done = True
        deadline.task = None
        queue = self._queue
        while queue and queue[0].done:
            queue.popleft()
        if not queue and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __len__(self) -> int:
        return len(self._queue)

    def _expire(self) -> None:
        self._timer = None
        now = self.loop.time() + _EARLY_S
        queue = self._queue
        while queue:
            deadline = queue[0]
            if not deadline.done and deadline.at > now:
                break
            queue.popleft()
            if not deadline.done and deadline.task is not None:
                deadline.expired = True
                deadline.task.cancel()
        if queue:
            self._timer = self.loop.call_at(queue[0].at, self._expire)
