"""Which backend holds a Chronicle, chosen once from its location (GOVFN_CHRONICLE,
`--ledger`): a libpq URI (postgresql:// or postgres://) is PostgreSQL, anything else a
SQLite file. Everything past this factory holds a `chronicle.Chronicle`."""

from __future__ import annotations

from typing import Literal

from govfn.chronicle.chronicle import Chronicle
from govfn.databases.postgres import is_uri

__all__ = ["chronicle_backend", "open_chronicle"]


def chronicle_backend(location: str) -> Literal["postgres", "sqlite"]:
    """Which backend a GOVFN_CHRONICLE / --ledger value names."""
    return "postgres" if is_uri(location) else "sqlite"


def open_chronicle(
    location: str,
    *,
    sync: str = "normal",
    outbox: bool | None = None,
    openlineage: bool | None = None,
) -> Chronicle:
    """The Chronicle at `location` (nothing is opened yet). `outbox` / `openlineage` None
    (anything but a serving process): a SQLite file keeps the queueing settings it has;
    its records are queued as its serving process said."""
    if chronicle_backend(location) == "postgres":
        from govfn.chronicle.postgres.ledger import PostgresLedger

        return PostgresLedger(location, outbox=bool(outbox))
    from govfn.chronicle.sqlite.ledger import Ledger

    return Ledger(location, sync=sync, outbox=outbox, openlineage=openlineage)
