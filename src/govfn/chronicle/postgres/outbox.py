"""The K_SINK outbox in PostgreSQL, shared by every pod.

Any pod's sender claims any pod's unsent records (`FOR UPDATE SKIP LOCKED`: senders
claiming at the same time take different rows and never wait on each other), so a pod
that scales to zero strands nothing. Leases are measured on the database's clock, the
one clock every pod shares. Keys are (log_id, seq); signed checkpoint notes wait in
`note_outbox` (keys: note ids) and go out after the records.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from govfn.chronicle.outbox import Claimed, ClaimedNote
from govfn.chronicle.postgres.database import Database
from govfn.chronicle.store import LedgerError

_CLAIM = """
WITH due AS (
    SELECT log_id, seq FROM chronicle.outbox
    WHERE claimed_until < extract(epoch FROM now())
    ORDER BY log_id, seq LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
UPDATE chronicle.outbox AS o
SET claimed_until = extract(epoch FROM now()) + %(lease)s, attempts = o.attempts + 1
FROM due, chronicle.records AS r
WHERE o.log_id = due.log_id AND o.seq = due.seq AND r.log_id = o.log_id AND r.seq = o.seq
RETURNING o.log_id, o.seq, r.cid, r.type, r.body
"""
_RELEASE = (
    "UPDATE chronicle.outbox SET claimed_until = extract(epoch FROM now()) + %s "
    "WHERE (log_id, seq) IN (SELECT * FROM unnest(%s::integer[], %s::bigint[]))"
)

# Signed checkpoint notes, after the records (the sender asks for them once none is due).
_CLAIM_NOTES = """
WITH due AS (
    SELECT id FROM chronicle.note_outbox
    WHERE claimed_until < extract(epoch FROM now())
    ORDER BY id LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
UPDATE chronicle.note_outbox AS o
SET claimed_until = extract(epoch FROM now()) + %(lease)s, attempts = o.attempts + 1
FROM due, chronicle.checkpoint_notes AS n
WHERE o.id = due.id AND n.id = o.id
RETURNING o.id, n.note
"""
_RELEASE_NOTES = (
    "UPDATE chronicle.note_outbox SET claimed_until = extract(epoch FROM now()) + %s "
    "WHERE id = ANY(%s::bigint[])"
)


class PostgresOutbox:
    def __init__(self, uri: str) -> None:
        self.database = Database(uri)  # its connection pool and error handling

    def claim(self, batch: int, lease_s: float) -> list[Claimed]:
        with self.database.connection() as conn:
            rows = conn.execute(_CLAIM, {"batch": batch, "lease": lease_s}).fetchall()
        rows.sort(key=lambda row: (row[0], row[1]))
        return [Claimed((log, seq), cid, kind, bytes(body)) for log, seq, cid, kind, body in rows]

    def sent(self, key: Hashable) -> None:
        assert isinstance(key, tuple)  # (log_id, seq): see claim()
        log_id, seq = key
        with self.database.connection() as conn:
            conn.execute(
                "DELETE FROM chronicle.outbox WHERE log_id = %s AND seq = %s", (log_id, seq)
            )

    def release(self, keys: Sequence[Hashable], due_in_s: float) -> None:
        pairs = [key for key in keys if isinstance(key, tuple)]
        logs, seqs = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
        with self.database.connection() as conn:
            conn.execute(_RELEASE, (due_in_s, logs, seqs))

    def claim_notes(self, batch: int, lease_s: float) -> list[ClaimedNote]:
        with self.database.connection() as conn:
            rows = conn.execute(_CLAIM_NOTES, {"batch": batch, "lease": lease_s}).fetchall()
        rows.sort(key=lambda row: int(row[0]))
        return [ClaimedNote(int(note_id), str(note).encode("utf-8")) for note_id, note in rows]

    def note_sent(self, key: Hashable) -> None:
        with self.database.connection() as conn:
            conn.execute("DELETE FROM chronicle.note_outbox WHERE id = %s", (key,))

    def release_notes(self, keys: Sequence[Hashable], due_in_s: float) -> None:
        with self.database.connection() as conn:
            conn.execute(_RELEASE_NOTES, (due_in_s, [key for key in keys if isinstance(key, int)]))

    def depth(self) -> int:
        try:
            with self.database.connection() as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM chronicle.outbox) "
                    "+ (SELECT count(*) FROM chronicle.note_outbox)"
                ).fetchone()
        except LedgerError:
            return -1
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.database.close()
