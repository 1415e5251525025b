"""Waiting for something another thread or process does, bounded in count and in time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    condition: Callable[[], object], timeout_s: float = 20.0, step_s: float = 0.05
) -> bool:
    """Poll `condition` until it holds or `timeout_s` has passed; whether it holds at the end."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / step_s) + 1):
        if condition() or time.monotonic() > deadline:
            break
        time.sleep(step_s)
    return bool(condition())
