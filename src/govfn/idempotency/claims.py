"""What every idempotency store shares: the claim, its key, and the store's contract.

    claim → "run"          first delivery (or the previous claim expired): run the handler
          → "replay"       already done: answer with the stored result, run nothing
          → "in_progress"  another delivery is running it now: the broker should retry later
          → "conflict"     same key, different payload: refuse, never retry

A success stores the result (`complete`); a failure releases the key (`release`) so the
broker's retry can run. A claim whose holder died is taken over once its lease (the
function's timeout, at least the store's `min_lease_s`, `MIN_LEASE_S` by default) has
passed; stored results expire after the store's `expiry_s`. A store that cannot be
reached raises `IdempotencyUnavailable` from `claim`: without a claim the function must
not run.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple, Protocol

DEFAULT_EXPIRY_S = 7 * 24 * 3600.0
MIN_LEASE_S = 60.0


class Claim(NamedTuple):
    status: str  # "run" | "replay" | "in_progress" | "conflict"
    key: str
    result: dict[str, Any] | None = None


class IdempotencyUnavailable(Exception):
    """The store cannot be reached or written; the message names it (never a password)."""


def idempotency_key(function_id: str, source: str, event_id: str) -> str:
    return hashlib.sha256("\x1f".join((function_id, source, event_id)).encode()).hexdigest()


class IdempotencyStore(Protocol):
    """What the runtime needs of a store. `complete` and `release` never raise for a store
    failure: the store keeps the outcome and writes it when it can, or logs it."""

    expiry_s: float

    def prepare(self) -> None:
        """Reach the store and create its schema now; IdempotencyUnavailable if it cannot."""

    async def check(self) -> None:
        """`prepare` from the event loop."""

    async def claim(self, key: str, fingerprint: str, lease_s: float | None = None) -> Claim: ...

    async def complete(self, key: str, result: dict[str, Any]) -> None: ...

    async def release(self, key: str) -> None: ...

    async def flush(self) -> bool:
        """Write outcomes kept while the store failed; True when none is left."""

    async def purge_expired(self) -> int: ...

    async def aclose(self) -> None: ...
