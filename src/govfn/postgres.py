"""What the PostgreSQL backends share: telling a libpq URI from a file, naming its server
without its password, and creating a schema once however many pods start together.

    is_uri("postgresql://app:secret@db:5432/govfn")   → True   (also postgres://)
    where("postgresql://app:secret@db:5432/govfn")    → "db:5432/govfn"
    ensure_schema(conn, "idempotency", 1, DDL)         sync connection (CLI, start check)
    await ensure_schema_async(conn, "idempotency", 1, DDL)   async connection (serving)

Each component (ledger, idempotency store) has a row in `govfn_schema` naming the schema
version it created. Creation happens in one transaction under a transaction-scoped
advisory lock, so N processes starting at once create it once and the others wait, then
find it done. A version newer than this govfn knows is refused (`SchemaError`): an older
pod must not write into tables it does not understand.

psycopg itself is imported only by the functions that connect, never by `is_uri`/`where`.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    import psycopg

URI_SCHEMES = ("postgresql://", "postgres://")

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS govfn_schema (
    component text PRIMARY KEY,
    version   integer NOT NULL
)
"""
_READ_VERSION = "SELECT version FROM govfn_schema WHERE component = %s"
_WRITE_VERSION = (
    "INSERT INTO govfn_schema (component, version) VALUES (%s, %s) "
    "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version"
)
_LOCK = "SELECT pg_advisory_xact_lock(%s)"
_SCHEMA_LOCK_ID = zlib.crc32(b"govfn schema")  # one lock for every component's DDL


class SchemaError(Exception):
    """The database holds a schema this govfn cannot use."""


def is_uri(target: str) -> bool:
    """True for a libpq URI (`postgresql://...` or `postgres://...`, any case)."""
    return target[:13].lower().startswith(URI_SCHEMES)


def where(uri: str) -> str:
    """`host:port/database` of a libpq URI, for messages: never the user or password.
    A Unix-socket URI (`postgresql://u@/db?host=/run/pg`) names its socket folder."""
    try:
        parts = urlsplit(uri)
        query = parse_qs(parts.query)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "an unparsable PostgreSQL URI"
    host = host or (query.get("host") or [""])[0] or "localhost"
    port_text = str(port) if port else (query.get("port") or [""])[0]
    database = parts.path.lstrip("/") or (query.get("dbname") or [""])[0]
    text = f"{host}:{port_text}" if port_text else host
    return f"{text}/{database}" if database else text


def _checked(component: str, version: int, found: Any) -> bool:
    """True when `found` (the stored version, or None) is this version; refuses newer ones."""
    if found is None:
        return False
    if found > version:
        raise SchemaError(
            f"the database's {component} schema is version {found}; this govfn knows {version}"
        )
    return bool(found == version)


def ensure_schema(conn: psycopg.Connection[Any], component: str, version: int, ddl: str) -> None:
    """Create `component`'s tables (`ddl`, idempotent statements) unless its version is
    already recorded. `conn` must be in autocommit mode; the DDL runs in one transaction."""
    import psycopg

    try:
        row = conn.execute(_READ_VERSION, (component,)).fetchone()
        if _checked(component, version, row[0] if row else None):
            return
    except psycopg.errors.UndefinedTable:
        pass
    with conn.transaction():
        conn.execute(_LOCK, (_SCHEMA_LOCK_ID,))
        conn.execute(_VERSION_TABLE)
        row = conn.execute(_READ_VERSION, (component,)).fetchone()
        if _checked(component, version, row[0] if row else None):
            return
        conn.execute(ddl)
        conn.execute(_WRITE_VERSION, (component, version))


async def ensure_schema_async(
    conn: psycopg.AsyncConnection[Any], component: str, version: int, ddl: str
) -> None:
    """`ensure_schema` on an async connection."""
    import psycopg

    try:
        row = await (await conn.execute(_READ_VERSION, (component,))).fetchone()
        if _checked(component, version, row[0] if row else None):
            return
    except psycopg.errors.UndefinedTable:
        pass
    async with conn.transaction():
        await conn.execute(_LOCK, (_SCHEMA_LOCK_ID,))
        await conn.execute(_VERSION_TABLE)
        row = await (await conn.execute(_READ_VERSION, (component,))).fetchone()
        if _checked(component, version, row[0] if row else None):
            return
        await conn.execute(ddl)
        await conn.execute(_WRITE_VERSION, (component, version))
