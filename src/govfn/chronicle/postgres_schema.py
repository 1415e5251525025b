"""The Chronicle's tables in PostgreSQL, and creating them once however many pods start at once.

Everything lives in the schema `chronicle`:

    logs            one row per writing process (its log id, who wrote it, when it began)
    records         (log_id, seq) -> cid, type, canonical body, chain; a hash index on cid
    checkpoints     (log_id, tree_size) -> root: tree heads later verification must reproduce
    outbox          (log_id, seq) of records not yet accepted by K_SINK, with a claim lease
    schema_version  the version of these tables

Triggers refuse UPDATE, DELETE and TRUNCATE on logs, records and checkpoints, whoever asks.
The schema is created on first use while holding an advisory lock, so
processes starting together wait for the first one instead of racing it; `govfn chronicle
init` creates it ahead of time for deployments whose serving role may not run DDL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from govfn.chronicle.store import LedgerError

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 1

# pg_advisory_lock key: "govfnchr" as a big-endian 64-bit integer.
SCHEMA_LOCK_KEY = int.from_bytes(b"govfnchr", "big") - (1 << 63)

SCHEMA_PRESENT = "SELECT to_regclass('chronicle.schema_version') IS NOT NULL"
CURRENT_VERSION = "SELECT max(version) FROM chronicle.schema_version"

DDL = """
CREATE SCHEMA IF NOT EXISTS chronicle;
CREATE TABLE chronicle.schema_version (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE chronicle.logs (
    log_id     integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    writer     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE chronicle.records (
    log_id integer NOT NULL REFERENCES chronicle.logs,
    seq    bigint  NOT NULL,
    cid    text    NOT NULL,
    type   text    NOT NULL,
    body   bytea   NOT NULL,
    chain  bytea   NOT NULL,
    PRIMARY KEY (log_id, seq)
);
CREATE INDEX records_by_cid ON chronicle.records USING hash (cid);
CREATE TABLE chronicle.checkpoints (
    log_id     integer     NOT NULL REFERENCES chronicle.logs,
    tree_size  bigint      NOT NULL,
    root       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (log_id, tree_size)
);
CREATE TABLE chronicle.outbox (
    log_id        integer          NOT NULL,
    seq           bigint           NOT NULL,
    claimed_until double precision NOT NULL DEFAULT 0,
    attempts      integer          NOT NULL DEFAULT 0,
    PRIMARY KEY (log_id, seq)
);
CREATE FUNCTION chronicle.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the Chronicle is append-only (% on %)', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER logs_append_only BEFORE UPDATE OR DELETE ON chronicle.logs
    FOR EACH ROW EXECUTE FUNCTION chronicle.refuse_change();
CREATE TRIGGER logs_no_truncate BEFORE TRUNCATE ON chronicle.logs
    FOR EACH STATEMENT EXECUTE FUNCTION chronicle.refuse_change();
CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON chronicle.records
    FOR EACH ROW EXECUTE FUNCTION chronicle.refuse_change();
CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON chronicle.records
    FOR EACH STATEMENT EXECUTE FUNCTION chronicle.refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON chronicle.checkpoints
    FOR EACH ROW EXECUTE FUNCTION chronicle.refuse_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON chronicle.checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION chronicle.refuse_change();
"""


def _version(conn: psycopg.Connection[Any]) -> Any:
    present = conn.execute(SCHEMA_PRESENT).fetchone()
    if not present or not present[0]:
        return None
    row = conn.execute(CURRENT_VERSION).fetchone()
    return row[0] if row else None


async def _version_async(conn: psycopg.AsyncConnection[Any]) -> Any:
    present = await (await conn.execute(SCHEMA_PRESENT)).fetchone()
    if not present or not present[0]:
        return None
    row = await (await conn.execute(CURRENT_VERSION)).fetchone()
    return row[0] if row else None


def _check(version: Any, where: str, create: bool) -> bool:
    """True when the schema is in place; False when it must be created; raises otherwise."""
    if version == SCHEMA_VERSION:
        return True
    if version is not None and int(version) > SCHEMA_VERSION:
        raise LedgerError(
            f"the Chronicle schema in {where} is version {version}; "
            f"this govfn knows version {SCHEMA_VERSION}: upgrade govfn"
        )
    if not create:
        raise LedgerError(f"no Chronicle schema in {where}: run `govfn chronicle init` first")
    return False


def _no_privilege(where: str, role: str) -> LedgerError:
    return LedgerError(
        f"no Chronicle schema in {where}, and role {role!r} may not create it: run "
        "`govfn chronicle init --ledger URI` as a role that may (the database owner)"
    )


def ensure_schema(conn: psycopg.Connection[Any], where: str, *, create: bool = True) -> None:
    """Make sure the schema exists, creating it under the advisory lock when absent.

    The lock is a session lock taken in its own statement: the check after it runs in a
    new transaction, which is what makes PostgreSQL see DDL committed meanwhile (a
    transaction that was already open could keep a stale view of the catalog)."""
    import psycopg

    if _check(_version(conn), where, create):
        return
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            if _check(_version(conn), where, create):
                return
            with conn.transaction():
                conn.execute(DDL)
                conn.execute(
                    "INSERT INTO chronicle.schema_version(version) VALUES (%s)", (SCHEMA_VERSION,)
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
    except psycopg.errors.InsufficientPrivilege:
        raise _no_privilege(where, conn.info.user) from None


async def ensure_schema_async(
    conn: psycopg.AsyncConnection[Any], where: str, *, create: bool = True
) -> None:
    """`ensure_schema` over an async connection."""
    import psycopg

    if _check(await _version_async(conn), where, create):
        return
    try:
        await conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            if _check(await _version_async(conn), where, create):
                return
            async with conn.transaction():
                await conn.execute(DDL)
                await conn.execute(
                    "INSERT INTO chronicle.schema_version(version) VALUES (%s)", (SCHEMA_VERSION,)
                )
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
    except psycopg.errors.InsufficientPrivilege:
        raise _no_privilege(where, conn.info.user) from None
