"""SQLite connections that a process does not carry across fork().

SQLite's documentation: a connection opened before fork() must not be used in the child,
and closing it there is no safer (the child's copy of the file's lock and shared-memory
state is the parent's). A ledger keeps its connection once opened (after `prepare()` too:
under `govfn serve --single-process` nothing forks, and reopening the file costs its WAL
again), so every open ledger connection of a process is closed just before a fork; the
child, and the parent when it writes again, open their own.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class ForkSafe(Protocol):
    def close_before_fork(self) -> None:
        """Close this process's connection, if it has one open."""


_OPEN: weakref.WeakSet[ForkSafe] = weakref.WeakSet()


def closed_before_fork(owner: ForkSafe) -> None:
    """Have `owner.close_before_fork()` called before this process forks."""
    _OPEN.add(owner)


def _before_fork() -> None:
    for owner in list(_OPEN):
        owner.close_before_fork()


os.register_at_fork(before=_before_fork)
