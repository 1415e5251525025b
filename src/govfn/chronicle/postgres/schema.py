"""The Chronicle's tables in PostgreSQL, and creating them once however many pods start at once.

Everything lives in the schema `chronicle`:

    logs              one row per writing process (its log id, who wrote it, when it began)
    records           (log_id, seq) -> cid, type, canonical body, chain, tree; a hash index
                      on cid. `tree` holds the Merkle subtree hashes that record's append
                      stores (`tree.py`, packed: its leaf hash, then each subtree it
                      completes), so a root or a proof of a log reads O(log n) rows
    checkpoints       (log_id, tree_size) -> root: tree heads later verification must reproduce
    checkpoint_notes  signed checkpoints (C2SP tlog-checkpoint notes), per log
    outbox            (log_id, seq) of records not yet accepted by K_SINK, with a claim lease
    note_outbox       ids of checkpoint notes not yet accepted by K_SINK, with a claim lease
    schema_version    the version of these tables

Triggers refuse UPDATE, DELETE and TRUNCATE on logs, records, checkpoints and
checkpoint_notes, whoever asks.

Version 2 added `records.tree`, `checkpoint_notes` and `note_outbox`. Upgrading a version 1
database (under the advisory lock, in one transaction) computes the stored hashes of every
record already written, log by log.
The schema is created on first use while holding an advisory lock (`govfn.databases.postgres`,
which the idempotency store's tables use too), so processes starting together wait for the
first one instead of racing it; `govfn chronicle init` creates it ahead of time for deployments
whose serving role may not run DDL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from govfn.chronicle import merkle, tree
from govfn.chronicle.store import LedgerError
from govfn.databases import postgres
from govfn.databases.postgres import Schema, SchemaError

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 2

# pg_advisory_lock key: "govfnchr" as a big-endian 64-bit integer.
SCHEMA_LOCK_KEY = int.from_bytes(b"govfnchr", "big") - (1 << 63)

DDL_V1 = """
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

TO_V2 = """
ALTER TABLE chronicle.records ADD COLUMN tree bytea;
CREATE TABLE chronicle.checkpoint_notes (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log_id     integer     NOT NULL REFERENCES chronicle.logs,
    tree_size  bigint      NOT NULL,
    note       text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkpoint_notes_by_log ON chronicle.checkpoint_notes (log_id, tree_size);
CREATE TABLE chronicle.note_outbox (
    id            bigint           PRIMARY KEY,
    claimed_until double precision NOT NULL DEFAULT 0,
    attempts      integer          NOT NULL DEFAULT 0
);
CREATE TRIGGER checkpoint_notes_append_only BEFORE UPDATE OR DELETE ON chronicle.checkpoint_notes
    FOR EACH ROW EXECUTE FUNCTION chronicle.refuse_change();
CREATE TRIGGER checkpoint_notes_no_truncate BEFORE TRUNCATE ON chronicle.checkpoint_notes
    FOR EACH STATEMENT EXECUTE FUNCTION chronicle.refuse_change();
"""

DDL = DDL_V1 + TO_V2

_BACKFILL_BATCH = 4096
_FILL = (
    "UPDATE chronicle.records AS r SET tree = v.tree "
    "FROM unnest(%s::bigint[], %s::bytea[]) AS v(seq, tree) "
    "WHERE r.log_id = %s AND r.seq = v.seq"
)


def upgrade(conn: psycopg.Connection[Any], version: int) -> None:
    """From version 1: add the version 2 tables and store the tree hashes of every record
    written so far (the append-only trigger is off only inside this transaction, which
    holds the table's lock until it commits)."""
    if version != 1:
        raise SchemaError(f"no upgrade from Chronicle schema version {version}")
    conn.execute(TO_V2)
    conn.execute("ALTER TABLE chronicle.records DISABLE TRIGGER records_append_only")
    for (log_id,) in conn.execute("SELECT log_id FROM chronicle.logs ORDER BY log_id").fetchall():
        builder, done = tree.TreeBuilder(), 0
        while True:
            rows = conn.execute(
                "SELECT seq, body FROM chronicle.records WHERE log_id = %s AND seq > %s "
                "ORDER BY seq LIMIT %s",
                (log_id, done, _BACKFILL_BATCH),
            ).fetchall()
            if not rows:
                break
            # a log with a gap (records removed) keeps no hashes past it: verify names it
            contiguous = [(int(seq), bytes(body)) for seq, body in rows]
            contiguous = [row for n, row in enumerate(contiguous, done + 1) if row[0] == n]
            if contiguous:
                seqs = [seq for seq, _ in contiguous]
                hashes = [builder.append_packed(merkle.leaf_hash(body)) for _, body in contiguous]
                conn.execute(_FILL, (seqs, hashes, log_id))
            if len(contiguous) < len(rows):
                break
            done += len(contiguous)
    conn.execute("ALTER TABLE chronicle.records ENABLE TRIGGER records_append_only")


CHRONICLE_SCHEMA = Schema(
    component="Chronicle",
    version=SCHEMA_VERSION,
    ddl=DDL,
    version_table="chronicle.schema_version",
    lock_key=SCHEMA_LOCK_KEY,
    init_hint="run `govfn chronicle init --ledger URI`",
    upgrade=upgrade,
)


def ensure_schema(conn: psycopg.Connection[Any], where: str, *, create: bool = True) -> None:
    """Make sure the schema exists, creating it under the advisory lock when absent
    (`govfn.databases.postgres.ensure_schema`); LedgerError says what is wrong."""
    try:
        postgres.ensure_schema(conn, CHRONICLE_SCHEMA, where, create=create)
    except SchemaError as exc:
        raise LedgerError(str(exc)) from None


async def ensure_schema_async(
    conn: psycopg.AsyncConnection[Any], where: str, *, create: bool = True
) -> None:
    """`ensure_schema` over an async connection."""
    try:
        await postgres.ensure_schema_async(conn, CHRONICLE_SCHEMA, where, create=create)
    except SchemaError as exc:
        raise LedgerError(str(exc)) from None
