"""Once per trigger event: the idempotency stores behind `idempotent=True` functions.

    claims      the claim, its key, the store's contract (`IdempotencyStore`)
    sqlite      one SQLite file per pod, shared by its workers (the embedded default)
    postgres    one PostgreSQL table shared by every pod (imported only when configured)

`open_store(target)` picks the backend: a libpq URI (`postgresql://...`) or a file path.
"""

from __future__ import annotations

import os

from govfn.chronicle.settlement import Settlement
from govfn.databases.postgres import is_uri
from govfn.idempotency.claims import (
    DEFAULT_EXPIRY_S,
    LEASE_S,
    MIN_LEASE_S,
    Claim,
    IdempotencyStore,
    IdempotencyUnavailable,
    Recorded,
    idempotency_key,
)
from govfn.idempotency.sqlite import SqliteIdempotencyStore

__all__ = [
    "DEFAULT_EXPIRY_S",
    "LEASE_S",
    "MIN_LEASE_S",
    "Claim",
    "IdempotencyStore",
    "IdempotencyUnavailable",
    "Recorded",
    "Settlement",
    "SqliteIdempotencyStore",
    "idempotency_key",
    "open_store",
]


def open_store(
    target: str | os.PathLike[str],
    *,
    expiry_s: float = DEFAULT_EXPIRY_S,
    min_lease_s: float = LEASE_S,
    settles_with_records: bool = False,
) -> IdempotencyStore:
    """The store at `target`: PostgreSQL for a libpq URI, otherwise a SQLite file. With
    `settles_with_records` (a PostgreSQL store in the Chronicle's own database), a claim's
    outcome is committed by the ledger's append of its FUNCTION_COMPLETED record."""
    if isinstance(target, str) and is_uri(target):
        from govfn.idempotency.postgres import PostgresIdempotencyStore

        return PostgresIdempotencyStore(
            target,
            expiry_s=expiry_s,
            min_lease_s=min_lease_s,
            settles_with_records=settles_with_records,
        )
    return SqliteIdempotencyStore(target, expiry_s=expiry_s, min_lease_s=min_lease_s)
