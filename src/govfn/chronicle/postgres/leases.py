"""A stable set of logs on PostgreSQL: writers lease a log rather than each starting one.

Each log of `chronicle.logs` is written by one writer at a time: the one holding the
session-level advisory lock (LEASE_KEY, log id) on the connection it appends through (a
commit lane's own connection; for synchronous appends, a connection kept for the lock).
A writer takes the lowest log nobody holds, resumes it from its head (its chain and the
right edge of its tree are read back as after a commit in doubt), and adds a log only when
every log is held. The lock needs no privilege and no table, and it ends with its session:
a pod that stops, is killed or loses its connection frees its logs at once, so a
deployment keeps as many logs as it ever ran writers at the same time (a pod whose node
vanished holds its logs until the database drops the dead connection), and each log's
checkpoints keep one origin, `<origin>/<log id>`, which witnesses are configured with.

A log is never forked by two writers: records are numbered within their log and `(log_id,
seq)` is the primary key, so a writer that appends after another took its log (a pod from
before leases, during a rolling upgrade) is refused and resumes from the head, as after a
commit in doubt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

LEASE_KEY = int.from_bytes(b"gvfl", "big")  # pg advisory lock class: "gvfl" (< 2**31)
_BATCH = 8
_ROUNDS = 4

_FREE = (
    "SELECT l.log_id FROM chronicle.logs l WHERE NOT EXISTS (SELECT 1 FROM pg_locks p "
    "WHERE p.locktype = 'advisory' AND p.database = (SELECT oid FROM pg_database WHERE "
    "datname = current_database()) AND p.classid::bigint = %s AND p.objid::bigint = l.log_id "
    "AND p.objsubid = 2) ORDER BY l.log_id LIMIT %s"
)
_TAKE = (
    "SELECT pg_try_advisory_lock(%s::int, %s::int), "
    "(SELECT max(seq) FROM chronicle.records WHERE log_id = %s)"
)
_NEW = "INSERT INTO chronicle.logs (writer) VALUES (%s) RETURNING log_id"
_HOLD = "SELECT pg_try_advisory_lock(%s::int, %s::int)"


def _take(row: tuple[Any, ...] | None) -> int | None:
    """The head seq of a log just locked (0 when empty), or None when it was not."""
    if row is None or not row[0]:
        return None
    return int(row[1] or 0)


def lease(conn: psycopg.Connection[Any], writer: str, prefer: int | None = None) -> tuple[int, int]:
    """Lock a log on `conn` (autocommit): `prefer` if free, else the lowest free one, else
    a new one. Returns (log id, its head seq)."""
    wanted = [prefer] if prefer is not None else []
    for _ in range(_ROUNDS):
        for log_id in wanted:
            head = _take(conn.execute(_TAKE, (LEASE_KEY, log_id, log_id)).fetchone())
            if head is not None:
                return log_id, head
        wanted = [int(r[0]) for r in conn.execute(_FREE, (LEASE_KEY, _BATCH)).fetchall()]
        if not wanted:
            break
    with conn.transaction():  # nobody sees the new log before its lock is held
        row = conn.execute(_NEW, (writer,)).fetchone()
        assert row is not None
        conn.execute(_HOLD, (LEASE_KEY, int(row[0])))
    return int(row[0]), 0


async def lease_async(
    conn: psycopg.AsyncConnection[Any], writer: str, prefer: int | None = None
) -> tuple[int, int]:
    """`lease` over an async connection (a commit lane's own)."""
    wanted = [prefer] if prefer is not None else []
    for _ in range(_ROUNDS):
        for log_id in wanted:
            cursor = await conn.execute(_TAKE, (LEASE_KEY, log_id, log_id))
            head = _take(await cursor.fetchone())
            if head is not None:
                return log_id, head
        cursor = await conn.execute(_FREE, (LEASE_KEY, _BATCH))
        wanted = [int(r[0]) for r in await cursor.fetchall()]
        if not wanted:
            break
    async with conn.transaction():
        cursor = await conn.execute(_NEW, (writer,))
        row = await cursor.fetchone()
        assert row is not None
        await conn.execute(_HOLD, (LEASE_KEY, int(row[0])))
    return int(row[0]), 0
