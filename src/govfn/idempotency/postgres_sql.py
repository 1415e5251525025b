"""The idempotency store's tables in PostgreSQL, and the statements that claim, renew,
settle and release a claim (`postgres.PostgresIdempotencyStore` runs them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from govfn.databases.postgres import Schema, SchemaError

if TYPE_CHECKING:
    import psycopg

_DDL_V1 = """
CREATE SCHEMA IF NOT EXISTS idempotency;
CREATE TABLE idempotency.schema_version (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE idempotency.claims (
    key         text        PRIMARY KEY,
    fingerprint text        NOT NULL,
    state       text        NOT NULL CHECK (state IN ('running', 'done')),
    holder      text        NOT NULL,
    result      text,
    until       timestamptz NOT NULL
);
CREATE INDEX claims_by_until ON idempotency.claims (until);
"""
# Version 2: the lease a claim was taken with (renewed by its holder's heartbeat), and the
# CID of the COMPLETED record whose outcome a holder noted before emitting it.
_TO_V2 = """
ALTER TABLE idempotency.claims
    ADD COLUMN lease  double precision NOT NULL DEFAULT 60,
    ADD COLUMN record text;
"""


def _upgrade(conn: psycopg.Connection[Any], version: int) -> None:
    if version != 1:
        raise SchemaError(f"no upgrade from idempotency schema version {version}")
    conn.execute(_TO_V2)


SCHEMA = Schema(
    component="idempotency",
    version=2,
    ddl=_DDL_V1 + _TO_V2,
    version_table="idempotency.schema_version",
    lock_key=int.from_bytes(b"govfnidm", "big") - (1 << 63),
    init_hint="run `govfn chronicle init`",
    upgrade=_upgrade,
)

# A claim's holder is gone when its lease ended and the database has been up for a whole
# lease since it last started: after a restart, every holder gets one lease to renew its
# claims before another pod may take them over (it could not renew while the database
# was down).
_LAPSED = (
    "({c}until <= now() AND pg_postmaster_start_time() <= now() - make_interval(secs => {c}lease))"
)
# The first branch returns a row when this claim inserted or took over the key (or is
# this very claim, committed by an attempt whose answer the connection lost): a claim
# whose holder is gone, unless that holder noted an outcome, which the caller checks
# against the ledger first. The second reads the claim otherwise. (A claim committed by
# another transaction after this statement's snapshot is invisible to the second branch:
# the caller reads again.)
CLAIM = f"""
WITH taken AS (
    INSERT INTO idempotency.claims AS c (key, fingerprint, state, holder, result, until, lease)
    VALUES (%(key)s, %(fingerprint)s, 'running', %(holder)s, NULL,
            now() + make_interval(secs => %(lease)s), %(lease)s)
    ON CONFLICT (key) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, state = 'running', holder = EXCLUDED.holder,
            result = NULL, record = NULL, until = EXCLUDED.until, lease = EXCLUDED.lease
        WHERE c.holder = EXCLUDED.holder
           OR (c.until <= now() AND c.state = 'done')
           OR ({_LAPSED.format(c="c.")} AND c.record IS NULL)
    RETURNING 'run'::text AS state, NULL::text AS fingerprint, NULL::text AS result,
              NULL::text AS holder, NULL::text AS record, false AS lapsed
)
SELECT * FROM taken
UNION ALL
SELECT state, fingerprint, result, holder, record, {_LAPSED.format(c="")} AS lapsed
FROM idempotency.claims WHERE key = %(key)s AND NOT EXISTS (SELECT 1 FROM taken)
"""
READ = (
    f"SELECT state, fingerprint, result, holder, record, {_LAPSED.format(c='')} "
    "FROM idempotency.claims WHERE key = %s"
)
FINISH_LAPSED = (
    "UPDATE idempotency.claims SET state = 'done', until = now() + make_interval(secs => %s) "
    "WHERE key = %s AND holder = %s AND state = 'running'"
)
TAKE_LAPSED = (
    "UPDATE idempotency.claims SET holder = %s, result = NULL, record = NULL, "
    "until = now() + make_interval(secs => %s), lease = %s "
    "WHERE key = %s AND holder = %s AND state = 'running'"
)
RENEW = (
    "UPDATE idempotency.claims SET until = now() + make_interval(secs => lease) "
    "WHERE holder = ANY(%s) AND state = 'running'"
)
NOTE = "UPDATE idempotency.claims SET result = %s, record = %s WHERE key = %s AND holder = %s"
COMPLETE = (
    "UPDATE idempotency.claims SET state = 'done', result = %s, "
    "until = now() + make_interval(secs => %s) WHERE key = %s AND holder = %s"
)
RELEASE = "DELETE FROM idempotency.claims WHERE key = %s AND holder = %s AND state = 'running'"
PURGE = "DELETE FROM idempotency.claims WHERE until <= now() AND (state = 'done' OR record IS NULL)"
