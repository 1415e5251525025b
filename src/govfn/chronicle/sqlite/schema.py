"""The SQLite ledger file's schema, and how a file written by an older govfn is brought up
to it when it is opened (each step in one write transaction; a current file skips them).

`records` hold each record's canonical bytes, CID and chain value. The RFC 6962 Merkle
tree over the same leaves (a leaf is a record's canonical JSON bytes) is kept as stored
subtree hashes in `merkle_nodes` (layout in `tree.py`; one row per record holding the
hashes its append stored: its leaf hash, then each subtree it completes), so that a root,
an inclusion proof or a consistency proof reads O(log n) hashes. `checkpoints` keep tree
heads (size, root) that later verification must still reproduce; `checkpoint_notes` keep
signed checkpoints (C2SP tlog-checkpoint notes), queued in `note_outbox` for the sink like
records; `openlineage_outbox` queues function records for GOVFN_OPENLINEAGE_URL. Whether
records are queued is a setting in `ledger_settings` that only a serving process writes.
SQLite triggers refuse UPDATE and DELETE on records and on their hashes. The lookup keys
of CIDs are filed by `key_runs.py`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from govfn.chronicle import lookup_keys, merkle, tree
from govfn.chronicle.sqlite import key_runs
from govfn.chronicle.store import LedgerError, checked_reader

# How a new file's WAL switch and schema are written. Under "normal", which promises that
# records survive the process being killed but not power loss, they are not fsynced:
# the page cache survives a kill, and a new ledger holds no record yet (~1 ms of every
# cold start). Under "full" they are, so that no committed record can depend on them.
SCHEMA_SYNC = {"normal": "OFF", "full": "FULL"}


_TABLES = """
CREATE TABLE IF NOT EXISTS records (
    seq   INTEGER PRIMARY KEY,
    cid   TEXT    NOT NULL,
    type  TEXT    NOT NULL,
    body  BLOB    NOT NULL,
    chain BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    tree_size  INTEGER PRIMARY KEY,
    root       BLOB    NOT NULL,
    created_at TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS merkle_nodes (
    seq    INTEGER PRIMARY KEY,
    hashes BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint_notes (
    id         INTEGER PRIMARY KEY,
    tree_size  INTEGER NOT NULL,
    note       TEXT    NOT NULL UNIQUE,
    created_at TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS note_outbox (
    id            INTEGER PRIMARY KEY,
    claimed_until REAL    NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER IF NOT EXISTS merkle_nodes_no_update BEFORE UPDATE ON merkle_nodes
BEGIN SELECT RAISE(ABORT, 'the Chronicle is append-only'); END;
CREATE TRIGGER IF NOT EXISTS merkle_nodes_no_delete BEFORE DELETE ON merkle_nodes
BEGIN SELECT RAISE(ABORT, 'the Chronicle is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_to_tree AFTER INSERT ON records
BEGIN INSERT INTO merkle_nodes(seq, hashes) VALUES (NEW.seq, govfn_tree(NEW.seq, NEW.body)); END;
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'the Chronicle is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'the Chronicle is append-only'); END;
CREATE TABLE IF NOT EXISTS outbox (
    seq           INTEGER PRIMARY KEY,
    claimed_until REAL    NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS openlineage_outbox (
    seq           INTEGER PRIMARY KEY,
    claimed_until REAL    NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ledger_settings (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cid_keys (
    key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, seq)
) WITHOUT ROWID;
INSERT OR IGNORE INTO ledger_settings(name, value)
    SELECT 'cid_keys', 1 WHERE NOT EXISTS (SELECT 1 FROM records);
CREATE VIEW IF NOT EXISTS record_appends(cid, type, body, leaf, key) AS
    SELECT cid, type, body, chain, NULL FROM records WHERE 0;
"""
_APPEND_TRIGGER = f"""
CREATE TRIGGER IF NOT EXISTS record_appends_insert INSTEAD OF INSERT ON record_appends
BEGIN
    INSERT INTO records(cid, type, body, chain) VALUES (NEW.cid, NEW.type, NEW.body,
        govfn_chain((SELECT chain FROM records ORDER BY seq DESC LIMIT 1), NEW.leaf));
    {key_runs.FILE_RECENT}
END;
"""
# Ledgers from before the key runs filed each append's key into `cid_keys` directly;
# later ones found the seq to file it under with `max(seq)`, a search of `records`.
_APPEND_TRIGGER_SQL = (
    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'record_appends_insert'"
)

# Every record is queued for the sink by the same INSERT statement that stores it (so a
# record is in the ledger and in the outbox, or in neither) while the `outbox` setting
# is on. Only a serving process changes it (`Ledger(outbox=...)`): opening the file from
# the CLI changes nothing a serving process relies on.
# The same holds for OpenLineage RunEvents (function records only) and the `openlineage`
# setting, for GOVFN_OPENLINEAGE_URL.
# Each trigger exists only while its setting is on (`settle_outbox` creates and drops it
# with the setting, in one transaction): a trigger that is off still read the setting for
# every record appended. It reads the setting all the same, as an older govfn's trigger,
# which that govfn creates again whatever the setting, does.
_OUTBOX_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS records_to_outbox AFTER INSERT ON records
WHEN (SELECT value FROM ledger_settings WHERE name = 'outbox')
BEGIN INSERT INTO outbox(seq) VALUES (NEW.seq); END;
"""
_OPENLINEAGE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS records_to_openlineage AFTER INSERT ON records
WHEN NEW.type IN ('FUNCTION_INVOKED', 'FUNCTION_COMPLETED')
    AND (SELECT value FROM ledger_settings WHERE name = 'openlineage')
BEGIN INSERT INTO openlineage_outbox(seq) VALUES (NEW.seq); END;
"""
_SETTING = (
    "INSERT INTO ledger_settings(name, value) VALUES (?, ?) "
    "ON CONFLICT(name) DO UPDATE SET value = excluded.value"
)
OUTBOX_STATE = (
    "SELECT (SELECT value FROM ledger_settings WHERE name = 'outbox'), "
    "(SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'records_to_outbox'), "
    "(SELECT value FROM ledger_settings WHERE name = 'openlineage'), "
    "(SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'records_to_openlineage')"
)
_OBJECTS = (
    "checkpoint_notes",
    "checkpoints",
    "cid_keys",
    "ledger_settings",
    "merkle_nodes",
    "merkle_nodes_no_delete",
    "merkle_nodes_no_update",
    "note_outbox",
    "openlineage_outbox",
    "outbox",
    "record_appends",
    "record_appends_insert",
    "records",
    "records_no_delete",
    "records_no_update",
    "records_to_tree",
    *key_runs.OBJECTS,
)
_SCHEMA_OBJECTS = (
    "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE name IN "
    f"({', '.join(repr(name) for name in _OBJECTS)}) ORDER BY name)"
)
_SCHEMA_NAMES = ",".join(sorted(_OBJECTS))
KEYS_FILED = "SELECT value FROM ledger_settings WHERE name = 'cid_keys'"
TREE_STATE = "SELECT (SELECT max(seq) FROM records), (SELECT max(seq) FROM merkle_nodes)"
_INSERT_NODES = "INSERT INTO merkle_nodes(seq, hashes) VALUES (?, ?)"
_BACKFILL_BATCH = 4096

SCHEMA = _TABLES + key_runs.SCHEMA + _APPEND_TRIGGER


def in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], int]) -> int:
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot write Chronicle ledger: {exc}") from exc
    return result


def schema_ready(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute(_SCHEMA_OBJECTS).fetchall()[0][0] == _SCHEMA_NAMES)


def settle_outbox(conn: sqlite3.Connection, outbox: bool | None, openlineage: bool | None) -> None:
    """Write the outbox settings when this process sets them and the file says otherwise,
    and have each queueing trigger exist exactly while its setting is on. A ledger from
    before the setting, whose trigger queued every record, keeps queueing them (the
    setting is written on). Decided again inside the write transaction, from what the
    file holds then: another process may have changed it since it was read."""
    if _outbox_settled(conn.execute(OUTBOX_STATE).fetchall()[0], outbox, openlineage):
        return

    def settle(conn: sqlite3.Connection) -> int:
        state = conn.execute(OUTBOX_STATE).fetchall()[0]
        if _outbox_settled(state, outbox, openlineage):
            return 0
        stored, trigger_sql, lineage_stored, _ = state
        old_trigger = trigger_sql is not None and "ledger_settings" not in trigger_sql
        queue = int(outbox) if outbox is not None else (1 if old_trigger else stored)
        lineage = int(openlineage) if openlineage is not None else lineage_stored
        conn.execute("DROP TRIGGER IF EXISTS records_to_outbox")
        if queue:
            conn.execute(_OUTBOX_TRIGGER)
        conn.execute("DROP TRIGGER IF EXISTS records_to_openlineage")
        if lineage:
            conn.execute(_OPENLINEAGE_TRIGGER)
        if queue != stored:
            conn.execute(_SETTING, ("outbox", queue))
        if lineage != lineage_stored:
            conn.execute(_SETTING, ("openlineage", lineage))
        return 0

    in_transaction(conn, settle)


def _outbox_settled(
    state: tuple[int | None, str | None, int | None, str | None],
    outbox: bool | None,
    openlineage: bool | None,
) -> bool:
    stored, trigger_sql, lineage_stored, lineage_sql = state
    if trigger_sql is not None and "ledger_settings" not in trigger_sql:
        return False  # a trigger from before the setting
    queue = stored if outbox is None else int(outbox)
    lineage = lineage_stored if openlineage is None else int(openlineage)
    return (
        queue == stored
        and lineage == lineage_stored
        and (trigger_sql is not None) == bool(queue)
        and (lineage_sql is not None) == bool(lineage)
    )


def settle_append_trigger(conn: sqlite3.Connection) -> None:
    """A ledger written by an older govfn gets the current append trigger (in one write
    transaction: processes appending meanwhile use the one or the other); the keys a
    ledger from before the key runs filed stay in `cid_keys`, which lookups still read."""
    ((trigger_sql,),) = conn.execute(_APPEND_TRIGGER_SQL).fetchall()
    if key_runs.FILE_RECENT in trigger_sql:
        return

    def replace(conn: sqlite3.Connection) -> int:
        conn.execute("DROP TRIGGER IF EXISTS record_appends_insert")
        conn.execute(_APPEND_TRIGGER)
        return 0

    in_transaction(conn, replace)


def store_missing_hashes(conn: sqlite3.Connection) -> int:
    """Inside a write transaction, store the tree hashes of records that have none (a
    ledger written before `merkle_nodes` existed); return the tree size."""
    records, hashed = (value or 0 for value in conn.execute(TREE_STATE).fetchall()[0])
    if hashed > records:
        raise LedgerError(f"Chronicle tree hashes cover {hashed} records but {records} exist")
    builder = tree.TreeBuilder.resume(hashed, hash_reader(conn))
    while hashed < records:
        rows = conn.execute(
            "SELECT seq, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
            (hashed, _BACKFILL_BATCH),
        ).fetchall()
        nodes = [(seq, builder.append_packed(merkle.leaf_hash(bytes(body)))) for seq, body in rows]
        conn.executemany(_INSERT_NODES, nodes)
        hashed += len(nodes)
    return int(records)


def file_missing_keys(conn: sqlite3.Connection) -> int:
    """Inside a write transaction, file the key of every record's CID (once, for a
    ledger written before `cid_keys` existed; keys already filed stay as they are)."""
    last = 0
    while True:
        rows = conn.execute(
            "SELECT seq, cid FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
            (last, _BACKFILL_BATCH),
        ).fetchall()
        if not rows:
            break
        conn.executemany(
            "INSERT OR IGNORE INTO cid_keys(key, seq) VALUES (?, ?)",
            sorted((lookup_keys.lookup_key(cid), seq) for seq, cid in rows),
        )
        last = rows[-1][0]
    conn.execute("INSERT OR IGNORE INTO ledger_settings(name, value) VALUES ('cid_keys', 1)")
    return last


_LINKS_FILED = "SELECT value FROM ledger_settings WHERE name = 'links_through'"


def file_links_once(conn: sqlite3.Connection, batch: int) -> int:
    """Inside a write transaction, file the links of up to `batch` records past the
    `links_through` mark, sorted by key (neighbouring index pages), and move the mark."""
    through = conn.execute(_LINKS_FILED).fetchall()
    last = int(through[0][0]) if through else 0
    rows = conn.execute(
        "SELECT seq, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?", (last, batch)
    ).fetchall()
    if not rows:
        return 0
    entries = sorted(
        (key, seq) for seq, body in rows for key in lookup_keys.link_keys(_payload(bytes(body)))
    )
    conn.executemany("INSERT OR IGNORE INTO cid_keys(key, seq) VALUES (?, ?)", entries)
    conn.execute(
        "INSERT INTO ledger_settings(name, value) VALUES ('links_through', ?) "
        "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        (rows[-1][0],),
    )
    return len(rows)


def _payload(body: bytes) -> dict[str, object]:
    payload = json.loads(body)
    return payload if isinstance(payload, dict) else {}


def hash_reader(conn: sqlite3.Connection) -> tree.HashReader:
    """Stored tree hashes by index, from `merkle_nodes` (packed, one row per record)."""

    def fetch(seqs: list[int]) -> dict[int, bytes]:
        rows: dict[int, bytes] = {}
        for start in range(0, len(seqs), 500):
            chunk = seqs[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT seq, hashes FROM merkle_nodes WHERE seq IN ({marks})"
            rows.update(conn.execute(query, chunk).fetchall())
        return rows

    return checked_reader(tree.packed_reader(fetch))
