"""What a PostgreSQL append writes: the INSERT of a batch of records (one statement, with
the outbox rows and the settled idempotency claims in the same statement when asked), and
the head of the writer's own log (`WriterLog`) that numbers, chains and hashes its rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from govfn.chronicle import merkle, tree
from govfn.chronicle.records import Record
from govfn.chronicle.settlement import Settlement
from govfn.chronicle.store import GENESIS, LedgerError, chain_next

# One statement per append, whatever its size. Up to `_VALUES_ROWS` records travel as
# the rows of one VALUES list (a statement per row count, each prepared once per
# connection): their parameters are scalars, which psycopg's C dumpers write. A larger
# batch travels as arrays, whose dumper is Python (~5 µs a record): one statement for
# every larger size.
_VALUES_ROWS = 64
_COLUMNS = "INSERT INTO chronicle.records (log_id, seq, cid, type, body, chain, tree) "
_INSERT_ARRAYS = (
    _COLUMNS + "SELECT %s, * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bytea[], "
    "%s::bytea[], %s::bytea[])"
)


def _with_outbox(insert: str) -> str:
    return (
        "WITH stored AS (" + insert + " RETURNING log_id, seq) "
        "INSERT INTO chronicle.outbox (log_id, seq) SELECT log_id, seq FROM stored"
    )


def _insert_values(rows: int) -> str:
    return _COLUMNS + "VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * rows)


_STATEMENTS = {
    outbox: [
        (_with_outbox if outbox else str)(_insert_values(rows) if rows else _INSERT_ARRAYS)
        for rows in range(_VALUES_ROWS + 1)
    ]
    for outbox in (False, True)
}  # [outbox][rows]: the VALUES statement of that many rows; [outbox][0]: the arrays
# Claims of the idempotency store (same database) settled by the statement that appends
# their COMPLETED records (`govfn.chronicle.settlement`): keys, holders, results, expiries.
SETTLE = (
    "UPDATE idempotency.claims AS c SET state = 'done', result = v.result, "
    "until = now() + make_interval(secs => v.expiry) "
    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[]) "
    "AS v(key, holder, result, expiry) WHERE c.key = v.key AND c.holder = v.holder "
    "AND c.state = 'running'"
)


def settling(
    statement: str, params: list[Any], settlements: Sequence[Settlement]
) -> tuple[str, list[Any]]:
    """`statement` that also settles `settlements`, in one statement (one transaction)."""
    settle = "WITH settled AS (" + SETTLE + ") "
    if statement.startswith("WITH "):
        statement = settle + ", " + statement[len("WITH ") :]
    else:
        statement = settle + statement
    columns = [list(column) for column in zip(*settlements, strict=True)]
    return statement, [*columns, *params]


class WriterLog:
    """This writer's own log: its id, the last seq written, the chain at it, and the
    tree's right edge (`tree.TreeBuilder`) that the next record's stored hashes extend."""

    __slots__ = ("chain", "in_doubt", "log_id", "seq", "tree")

    def __init__(self, log_id: int) -> None:
        self.log_id = log_id
        self.seq = 0
        self.chain = GENESIS
        self.tree: tree.TreeBuilder | None = tree.TreeBuilder()
        self.in_doubt = False

    def rows(self, records: Sequence[Record], outbox: bool) -> tuple[str, list[Any], int, bytes]:
        """The INSERT of `records` after this head, its parameters, and the head it leads
        to. The tree builder moves on at once: a commit that fails puts the log in doubt,
        and recovery resumes the builder from what the database holds."""
        builder = self.tree
        if builder is None or builder.size != self.seq:
            raise LedgerError(f"log {self.log_id}: the tree's right edge is not known")
        seqs, chains, trees = [], [], []
        seq, chain = self.seq, self.chain
        for record in records:
            seq += 1
            leaf = merkle.leaf_hash(record.canonical)
            chain = chain_next(chain, leaf)
            seqs.append(seq)
            chains.append(chain)
            trees.append(builder.append_packed(leaf))
        if len(records) <= _VALUES_ROWS:
            params: list[Any] = []
            for record, at, linked, stored in zip(records, seqs, chains, trees, strict=True):
                params += (
                    self.log_id,
                    at,
                    record.cid,
                    record.type,
                    record.canonical,
                    linked,
                    stored,
                )
            return _STATEMENTS[outbox][len(records)], params, seq, chain
        params = [
            self.log_id,
            seqs,
            [r.cid for r in records],
            [r.type for r in records],
            [r.canonical for r in records],
            chains,
            trees,
        ]
        return _STATEMENTS[outbox][0], params, seq, chain

    def doubt(self) -> None:
        """The last append may or may not have committed: forget the head until it is read."""
        self.in_doubt = True
        self.tree = None

    def recovered(self, head: tuple[int, bytes] | None, edge: tree.TreeBuilder) -> int:
        """Adopt the head read back after a doubtful commit, and the tree's right edge at
        it (`TreeBuilder.resume`); returns the seq known before."""
        known = self.seq
        self.seq, self.chain = (int(head[0]), bytes(head[1])) if head else (0, GENESIS)
        self.tree = edge
        self.in_doubt = False
        return known
