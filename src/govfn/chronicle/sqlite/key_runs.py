"""The SQLite ledger's lookup keys of record CIDs, filed in sorted runs rather than one index.

Every record's CID has a lookup key (`lookup_keys.lookup_key`: random, as hashes are). Filed
straight into one B-tree, each append rewrote a page of that index wherever its key fell:
about one 4 KiB page of write-ahead log per record, more than the record and its tree hashes
together, and the checkpointer copied every one back. So an append only adds its key at the
end of `recent_keys` (in seq order: the same last page for every append), and the
appending process files them, a step at a time, after its commits:

- the recent keys, `RUN_SIZE` at a time, become a run: one sorted range of `run_keys`,
  written page after page;
- `FAN_IN` runs of a level are merged into one run of the next level, in key-range chunks of
  about `CHUNK` keys (SQLite reads each source's range through its primary key and writes
  the merged run's pages in order); the sources stay in use until the merged run is
  complete, and the chunk that completes it swaps them;
- merged-away runs are deleted, a chunk at a time.

A key is written once per level (16 bytes on a dense page) instead of one page per append.
A lookup reads `cid_index`: the older `cid_keys` (the lineage links, and keys filed before
runs existed), every live run (a primary-key search each: at most `FAN_IN` - 1 runs a
level plus a merge's sources, about 30 at a million records), and a scan of the recent
keys (about `RUN_SIZE` of them while the appends keep filing).

Each step is one SQL statement in autocommit (an INSERT on the `key_filing` view, whose
triggers do the work), about a millisecond of the write lock, taken by the thread that
appends right after its own commit. Done by another thread, it stalled the appends behind
it: on a busy machine the thread holding the lock was often not the one running (p99 two
to seven times longer in `govfn serve` under load). What a step is given (run ids, key
ranges) is read before it; its triggers check that it still holds and ignore the step
otherwise, so several processes sharing a file can step in any order.
"""

from __future__ import annotations

import sqlite3

RUN_SIZE = 1024  # recent keys that become a run (one step files no more)
FAN_IN = 8  # runs of one level merged into one of the next
CHUNK = 1024  # keys a merge copies (and a deletion removes) per step, about

_KEY_MIN = -(2**63)
_KEY_MAX = 2**63 - 1

LIVE, BUILDING, MERGED = 0, 1, 2  # a run is found by lookups / being merged into / to delete

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS recent_keys (
    seq INTEGER PRIMARY KEY,
    key INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS key_runs (
    run         INTEGER PRIMARY KEY,
    level       INTEGER NOT NULL,
    state       INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    merged_into INTEGER
);
CREATE TABLE IF NOT EXISTS run_keys (
    run INTEGER NOT NULL,
    key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (run, key, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS key_merges (
    target   INTEGER PRIMARY KEY,
    next_key INTEGER NOT NULL
);
-- CROSS JOIN keeps the runs outside: a primary-key search of each run's range for the key.
CREATE VIEW IF NOT EXISTS cid_index(key, seq) AS
    SELECT key, seq FROM cid_keys
    UNION ALL SELECT key, seq FROM recent_keys
    UNION ALL SELECT found.key, found.seq FROM key_runs live CROSS JOIN run_keys found
        ON found.run = live.run WHERE live.state = {LIVE};
CREATE VIEW IF NOT EXISTS key_filing(action, run, level, low, high) AS
    SELECT NULL, NULL, NULL, NULL, NULL WHERE 0;
-- run: the recent keys up to seq `high` become the live run `run`.
CREATE TRIGGER IF NOT EXISTS key_filing_run INSTEAD OF INSERT ON key_filing
WHEN NEW.action = 'run'
BEGIN
    SELECT RAISE(IGNORE) WHERE NOT EXISTS (SELECT 1 FROM recent_keys WHERE seq <= NEW.high);
    INSERT INTO key_runs(run, level, state, size) VALUES (NEW.run, 0, {LIVE},
        (SELECT count(*) FROM recent_keys WHERE seq <= NEW.high));
    INSERT INTO run_keys(run, key, seq)
        SELECT NEW.run, key, seq FROM recent_keys WHERE seq <= NEW.high ORDER BY key, seq;
    DELETE FROM recent_keys WHERE seq <= NEW.high;
END;
-- merge: the `high` oldest live runs of `level` are to be merged into run `run`.
CREATE TRIGGER IF NOT EXISTS key_filing_merge INSTEAD OF INSERT ON key_filing
WHEN NEW.action = 'merge'
BEGIN
    SELECT RAISE(IGNORE) WHERE EXISTS (SELECT 1 FROM key_merges)
        OR (SELECT count(*) FROM key_runs WHERE state = {LIVE} AND merged_into IS NULL
            AND level = NEW.level) < NEW.high;
    UPDATE key_runs SET merged_into = NEW.run WHERE run IN (
        SELECT run FROM key_runs WHERE state = {LIVE} AND merged_into IS NULL
        AND level = NEW.level ORDER BY run LIMIT NEW.high);
    INSERT INTO key_runs(run, level, state, size) VALUES (NEW.run, NEW.level + 1, {BUILDING},
        (SELECT sum(size) FROM key_runs WHERE merged_into = NEW.run));
    INSERT INTO key_merges(target, next_key) VALUES (NEW.run, {_KEY_MIN});
END;
-- copy: the sources' keys from `low` to `high` (inclusive) go into the merged run `run`;
-- the chunk that reaches the largest key makes it live and its sources merged away.
CREATE TRIGGER IF NOT EXISTS key_filing_copy INSTEAD OF INSERT ON key_filing
WHEN NEW.action = 'copy'
BEGIN
    SELECT RAISE(IGNORE) WHERE NOT EXISTS (
        SELECT 1 FROM key_merges WHERE target = NEW.run AND next_key = NEW.low);
    INSERT INTO run_keys(run, key, seq) SELECT NEW.run, key, seq FROM run_keys
        WHERE run IN (SELECT run FROM key_runs WHERE merged_into = NEW.run)
        AND key >= NEW.low AND key <= NEW.high ORDER BY key, seq;
    UPDATE key_merges SET next_key = NEW.high + 1
        WHERE target = NEW.run AND NEW.high < {_KEY_MAX};
    UPDATE key_runs SET state = {LIVE} WHERE run = NEW.run AND NEW.high = {_KEY_MAX};
    UPDATE key_runs SET state = {MERGED}
        WHERE merged_into = NEW.run AND NEW.high = {_KEY_MAX};
    DELETE FROM key_merges WHERE target = NEW.run AND NEW.high = {_KEY_MAX};
END;
-- delete: a merged-away run's keys up to `high`; the run itself once none is left.
CREATE TRIGGER IF NOT EXISTS key_filing_delete INSTEAD OF INSERT ON key_filing
WHEN NEW.action = 'delete'
BEGIN
    DELETE FROM run_keys WHERE run = NEW.run AND key <= NEW.high
        AND (SELECT state FROM key_runs WHERE run = NEW.run) = {MERGED};
    DELETE FROM key_runs WHERE run = NEW.run AND state = {MERGED}
        AND NOT EXISTS (SELECT 1 FROM run_keys WHERE run = NEW.run);
END;
"""
OBJECTS = (
    "cid_index",
    "key_filing",
    "key_filing_copy",
    "key_filing_delete",
    "key_filing_merge",
    "key_filing_run",
    "key_merges",
    "key_runs",
    "recent_keys",
    "run_keys",
)

# What the append trigger files, after its INSERT into `records`: the key at the end of
# `recent_keys`, under the seq that INSERT took (inside a trigger, `last_insert_rowid()`
# is the trigger's own last insert; the tree and outbox triggers it set off restore it).
FILE_RECENT = "INSERT INTO recent_keys(seq, key) VALUES (last_insert_rowid(), NEW.key);"

_STEP = "INSERT INTO key_filing(action, run, level, low, high) VALUES (?, ?, ?, ?, ?)"


def file_step(conn: sqlite3.Connection, minimum: int | None = None) -> bool:
    """Take the next filing step, if there is one and the write lock is free (SQLITE_BUSY:
    not now); True when a step was taken. Recent keys become a run once there are
    `minimum` of them (`RUN_SIZE`). `conn` must be in autocommit mode, with no
    transaction open."""
    step = _next_step(conn, RUN_SIZE if minimum is None else minimum)
    if step is None:
        return False
    changes = conn.total_changes
    try:
        conn.execute(_STEP, step)
    except sqlite3.IntegrityError:  # another process took the same run id first
        return True
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY:
            return False
        raise
    return conn.total_changes != changes


def file_all(conn: sqlite3.Connection) -> None:
    """Every step there is to take, every recent key filed (tools and tests); it stops
    early while another process holds the write lock and `conn` does not wait for it."""
    while file_step(conn, minimum=1):
        pass


def _next_step(conn: sqlite3.Connection, minimum: int) -> tuple[str, int, int, int, int] | None:
    """What to do next, read outside any write transaction: recent keys first (lookups scan
    them), then a merge under way, merged-away runs, a new merge."""
    ((first, last, next_run),) = conn.execute(
        "SELECT (SELECT min(seq) FROM recent_keys), (SELECT max(seq) FROM recent_keys), "
        "(SELECT coalesce(max(run), 0) + 1 FROM key_runs)"
    ).fetchall()
    if first is not None and last - first + 1 >= max(1, minimum):  # their seqs run on
        return ("run", next_run, 0, 0, first + min(last - first + 1, RUN_SIZE) - 1)
    merging = conn.execute(
        "SELECT m.target, m.next_key, r.size FROM key_merges m JOIN key_runs r "
        "ON r.run = m.target LIMIT 1"
    ).fetchall()
    if merging:
        target, low, size = merging[0]
        width = -(-(_KEY_MAX - _KEY_MIN + 1) * CHUNK // max(1, size))  # about CHUNK keys
        return ("copy", target, 0, low, min(_KEY_MAX, low + width - 1))
    merged = conn.execute(
        f"SELECT run FROM key_runs WHERE state = {MERGED} ORDER BY run LIMIT 1"
    ).fetchall()
    if merged:
        (run,) = merged[0]
        bound = conn.execute(
            "SELECT key FROM run_keys WHERE run = ? ORDER BY key, seq LIMIT 1 OFFSET ?",
            (run, CHUNK - 1),
        ).fetchall()
        return ("delete", run, 0, 0, bound[0][0] if bound else _KEY_MAX)
    full = conn.execute(
        f"SELECT level FROM key_runs WHERE state = {LIVE} AND merged_into IS NULL "
        f"GROUP BY level HAVING count(*) >= {FAN_IN} ORDER BY level LIMIT 1"
    ).fetchall()
    if full:
        return ("merge", next_run, full[0][0], 0, FAN_IN)
    return None
