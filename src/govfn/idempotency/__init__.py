"""Once per trigger event: the idempotency stores behind `idempotent=True` functions.

    claims      the claim, its key, the store's contract (`IdempotencyStore`)
    sqlite      one SQLite file per pod, shared by its workers (the embedded default)
    postgres    one PostgreSQL table shared by every pod (imported only when configured)

`open_store(target)` picks the backend: a libpq URI (`postgresql://...`) or a file path.
"""

from __future__ import annotations

import os

from govfn.databases.postgres import is_uri
from govfn.idempotency.claims import (
    DEFAULT_EXPIRY_S,
    MIN_LEASE_S,
    Claim,
    IdempotencyStore,
    IdempotencyUnavailable,
    idempotency_key,
)
from govfn.idempotency.sqlite import SqliteIdempotencyStore

__all__ = [
    "DEFAULT_EXPIRY_S",
    "MIN_LEASE_S",
    "Claim",
    "IdempotencyStore",
    "IdempotencyUnavailable",
    "SqliteIdempotencyStore",
    "idempotency_key",
    "open_store",
]


def open_store(
    target: str | os.PathLike[str],
    *,
    expiry_s: float = DEFAULT_EXPIRY_S,
    min_lease_s: float = MIN_LEASE_S,
) -> IdempotencyStore:
    """The store at `target`: PostgreSQL for a libpq URI, otherwise a SQLite file."""
    if isinstance(target, str) and is_uri(target):
        from govfn.idempotency.postgres import PostgresIdempotencyStore

        return PostgresIdempotencyStore(target, expiry_s=expiry_s, min_lease_s=min_lease_s)
    return SqliteIdempotencyStore(target, expiry_s=expiry_s, min_lease_s=min_lease_s)
