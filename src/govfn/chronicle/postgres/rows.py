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
# every larger size. The statements are written with PostgreSQL's own placeholders ($1)
# and sent through a raw cursor (`psycopg.RawCursor`): psycopg would otherwise parse
# each `%s` statement of more than 50 parameters again at every execution (its cache of
# converted queries stops there), ~25 µs for a batch of ten records.
_VALUES_ROWS = 64
_COLUMNS = 7
_INSERT = "INSERT INTO chronicle.records (log_id, seq, cid, type, body, chain, tree) "
# Claims of the idempotency store (same database) settled by the statement that appends
# their COMPLETED records (`govfn.chronicle.settlement`): keys, holders, results, expiries.
_SETTLE_COLUMNS = 4
SETTLE = (
    "UPDATE idempotency.claims AS c SET state = 'done', result = v.result, "
    "until = now() + make_interval(secs => v.expiry) "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[]) "
    "AS v(key, holder, result, expiry) WHERE c.key = v.key AND c.holder = v.holder "
    "AND c.state = 'running'"
)


def _insert_arrays(first: int) -> str:
    n = [f"${first + i}" for i in range(_COLUMNS)]
    return (
        _INSERT + f"SELECT {n[0]}, * FROM unnest({n[1]}::bigint[], {n[2]}::text[], "
        f"{n[3]}::text[], {n[4]}::bytea[], {n[5]}::bytea[], {n[6]}::bytea[])"
    )


def _insert_values(rows: int, first: int) -> str:
    placeholders = (
        "(" + ", ".join(f"${first + row * _COLUMNS + i}" for i in range(_COLUMNS)) + ")"
        for row in range(rows)
    )
    return _INSERT + "VALUES " + ", ".join(placeholders)


def _append_statement(rows: int, outbox: bool, settles: bool) -> str:
    """The append of `rows` records as VALUES rows (0: as arrays), queuing them in the
    outbox and settling claims (parameters $1-$4, before the records') when asked."""
    first = 1 + (_SETTLE_COLUMNS if settles else 0)
    statement = _insert_values(rows, first) if rows else _insert_arrays(first)
    if outbox:
        statement = (
            "WITH stored AS (" + statement + " RETURNING log_id, seq) "
            "INSERT INTO chronicle.outbox (log_id, seq) SELECT log_id, seq FROM stored"
        )
    if settles:
        settle = "WITH settled AS (" + SETTLE + ") "
        if statement.startswith("WITH "):
            statement = settle + ", " + statement[len("WITH ") :]
        else:
            statement = settle + statement
    return statement


_STATEMENTS = {
    (outbox, settles): [
        _append_statement(rows, outbox, settles) for rows in range(_VALUES_ROWS + 1)
    ]
    for outbox in (False, True)
    for settles in (False, True)
}  # [(outbox, settles)][rows]: the VALUES statement of that many rows; [0]: the arrays


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

    def rows(
        self, records: Sequence[Record], outbox: bool, settlements: Sequence[Settlement] = ()
    ) -> tuple[str, list[Any], int, bytes]:
        """The INSERT of `records` after this head (that also settles `settlements`, in the
        same statement), its parameters ($1, $2...: for a raw cursor), and the head it
        leads to. The tree builder moves on at once: a commit that fails puts the log in
        doubt, and recovery resumes the builder from what the database holds."""
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
        statements = _STATEMENTS[outbox, bool(settlements)]
        params: list[Any] = [list(column) for column in zip(*settlements, strict=True)]
        if len(records) <= _VALUES_ROWS:
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
            return statements[len(records)], params, seq, chain
        params += [
            self.log_id,
            seqs,
            [r.cid for r in records],
            [r.type for r in records],
            [r.canonical for r in records],
            chains,
            trees,
        ]
        return statements[0], params, seq, chain

    @classmethod
    def leased(cls, log_id: int, head: int) -> WriterLog:
        """A log just leased, at `head`: one with records is resumed as after a commit in
        doubt (its chain and tree edge read back before the next append)."""
        log = cls(log_id)
        if head:
            log.seq = head
            log.doubt()
        return log

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
