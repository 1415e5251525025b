"""A pytest plugin: a test fails when it leaves asyncio tasks pending.

Pending means: on an event loop the test created and that is no longer running (its tasks
can never finish), or destroyed while pending (asyncio logs "Task was destroyed but it is
pending!" when such a task is collected). Loops are seen through the event loop policy,
which `asyncio.run`, `asyncio.new_event_loop` and govfn's loop thread all go through; a loop
still running when the test ends belongs to something longer-lived and is left alone.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator

import pytest

DESTROYED_PENDING = "Task was destroyed but it is pending"


class TrackingPolicy(asyncio.DefaultEventLoopPolicy):
    """The default policy, remembering every loop it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.created: list[asyncio.AbstractEventLoop] = []

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        self.created.append(loop)
        return loop


class _AsyncioRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if DESTROYED_PENDING in message:
            self.messages.append(message)


_policy = TrackingPolicy()
_previous: asyncio.AbstractEventLoopPolicy | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _previous
    _previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(_policy)


def pytest_unconfigure(config: pytest.Config) -> None:
    asyncio.set_event_loop_policy(_previous)


def leftover_tasks(loops: list[asyncio.AbstractEventLoop]) -> list[str]:
    """The tasks still pending on those of `loops` that no longer run."""
    return [
        repr(task) for loop in loops if not loop.is_running() for task in asyncio.all_tasks(loop)
    ]


@pytest.fixture(autouse=True)
def no_leftover_asyncio_tasks() -> Iterator[None]:
    first_new = len(_policy.created)
    records = _AsyncioRecords()
    logger = logging.getLogger("asyncio")
    logger.addHandler(records)
    try:
        yield
        new_loops = _policy.created[first_new:]
        if new_loops:
            gc.collect()  # a pending task that nothing holds is destroyed (and logged) now
        left = leftover_tasks(new_loops)
    finally:
        logger.removeHandler(records)
        del _policy.created[first_new:]
    if left or records.messages:
        pytest.fail(f"asyncio tasks left pending: {left + records.messages}", pytrace=False)
