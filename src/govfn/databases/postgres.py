"""What the PostgreSQL backends share: telling a libpq URI from a file, naming a database
without its password, and creating a component's tables once however many pods start.

    is_uri("postgresql://app:secret@db:5432/govfn")          → True (also postgres://)
    describe_database("postgresql://app:secret@db:5432/govfn") → "database govfn on host db:5432"
    ensure_schema(conn, SCHEMA, where)                          a sync connection (CLI, start)
    await ensure_schema_async(conn, SCHEMA, where)              an async one (serving)

A component (the Chronicle, the idempotency store) describes its tables as a `Schema`: DDL
that creates them and a version table, whose highest row is the version in place. When it
is absent, the DDL runs in one transaction while the process holds the schema's advisory
lock, so N processes starting at once create it once: the others wait for the lock, then
find it done. The lock is a session lock taken in its own statement, so the check after it
runs in a new transaction, which sees DDL committed meanwhile. A newer version than this
govfn knows is refused: an older pod must not write into tables it does not understand.
An older one is upgraded the same way (the schema's `upgrade`, under the lock, in one
transaction), by a synchronous connection: an async one is told to let `prepare` do it.

psycopg is imported only by the functions that connect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import psycopg

URI_SCHEMES = ("postgresql://", "postgres://")


class SchemaError(Exception):
    """A component's tables are absent and may not be created here, or are too new."""


class Schema(NamedTuple):
    component: str  # how messages name it: "Chronicle", "idempotency"
    version: int
    ddl: str  # creates every table, `version_table` included
    version_table: str  # qualified name; a `version integer` column, one row per version
    lock_key: int  # the pg_advisory_lock key (a signed 64-bit integer)
    init_hint: str  # what an operator runs when the serving role may not create it
    # Brings tables of an older version up to `version`, in the transaction that records
    # it, under the advisory lock: upgrade(conn, version in place). None: no upgrade path.
    upgrade: Callable[[psycopg.Connection[Any], int], None] | None = None


def is_uri(target: str) -> bool:
    """True for a libpq URI (`postgresql://...` or `postgres://...`, any case)."""
    return target[:13].lower().startswith(URI_SCHEMES)


def describe_database(uri: str) -> str:
    """'database D on host H:P' from a libpq URI: never the user's password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(uri)
    except Exception:
        return "a database URI that does not parse"
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "")
    at = f"{host}:{port}" if port and not host.startswith("/") else host
    if host.startswith("/"):
        at = f"socket {host}" + (f" port {port}" if port else "")
    return f"database {params.get('dbname') or '(default)'!s} on host {at}"


def _present(schema: Schema) -> str:
    return f"SELECT to_regclass('{schema.version_table}') IS NOT NULL"


def _current(schema: Schema) -> str:
    return f"SELECT max(version) FROM {schema.version_table}"


def _record(schema: Schema) -> str:
    return f"INSERT INTO {schema.version_table} (version) VALUES (%s)"


def _in_place(schema: Schema, version: Any, where: str, create: bool) -> bool:
    """True when the tables are in place; False when they must be created or upgraded;
    raises otherwise."""
    if version == schema.version:
        return True
    if version is not None and int(version) > schema.version:
        raise SchemaError(
            f"the {schema.component} schema in {where} is version {version}; "
            f"this govfn knows version {schema.version}: upgrade govfn"
        )
    if version is not None and schema.upgrade is None:
        raise SchemaError(
            f"the {schema.component} schema in {where} is version {version}, older than "
            f"{schema.version}, and cannot be upgraded in place"
        )
    if not create:
        if version is not None:
            raise SchemaError(
                f"the {schema.component} schema in {where} is version {version}: "
                f"{schema.init_hint} to upgrade it to version {schema.version}"
            )
        raise SchemaError(f"no {schema.component} schema in {where}: {schema.init_hint} first")
    return False


def _no_privilege(schema: Schema, where: str, role: str) -> SchemaError:
    return SchemaError(
        f"no {schema.component} schema in {where}, and role {role!r} may not create it: "
        f"{schema.init_hint} as a role that may (the database owner)"
    )


def _version(conn: psycopg.Connection[Any], schema: Schema) -> Any:
    present = conn.execute(_present(schema)).fetchone()
    if not present or not present[0]:
        return None
    row = conn.execute(_current(schema)).fetchone()
    return row[0] if row else None


async def _version_async(conn: psycopg.AsyncConnection[Any], schema: Schema) -> Any:
    present = await (await conn.execute(_present(schema))).fetchone()
    if not present or not present[0]:
        return None
    row = await (await conn.execute(_current(schema))).fetchone()
    return row[0] if row else None


def ensure_schema(
    conn: psycopg.Connection[Any], schema: Schema, where: str, *, create: bool = True
) -> None:
    """Make sure `schema` is in place, creating it under its advisory lock when absent.
    `conn` is in autocommit mode. SchemaError says what is wrong; psycopg errors pass."""
    import psycopg

    if _in_place(schema, _version(conn, schema), where, create):
        return
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (schema.lock_key,))
        try:
            version = _version(conn, schema)
            if _in_place(schema, version, where, create):
                return
            with conn.transaction():
                if version is None:
                    conn.execute(schema.ddl)
                else:
                    assert schema.upgrade is not None  # _in_place said so
                    schema.upgrade(conn, int(version))
                conn.execute(_record(schema), (schema.version,))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (schema.lock_key,))
    except psycopg.errors.InsufficientPrivilege:
        raise _no_privilege(schema, where, conn.info.user) from None


async def ensure_schema_async(
    conn: psycopg.AsyncConnection[Any], schema: Schema, where: str, *, create: bool = True
) -> None:
    """`ensure_schema` over an async connection."""
    import psycopg

    version = await _version_async(conn, schema)
    if version is not None and int(version) < schema.version:
        raise SchemaError(
            f"the {schema.component} schema in {where} is version {version}: "
            "it is upgraded by a synchronous connection (prepare) first"
        )
    if _in_place(schema, version, where, create):
        return
    try:
        await conn.execute("SELECT pg_advisory_lock(%s)", (schema.lock_key,))
        try:
            if _in_place(schema, await _version_async(conn, schema), where, create):
                return
            async with conn.transaction():
                await conn.execute(schema.ddl)
                await conn.execute(_record(schema), (schema.version,))
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (schema.lock_key,))
    except psycopg.errors.InsufficientPrivilege:
        raise _no_privilege(schema, where, conn.info.user) from None
