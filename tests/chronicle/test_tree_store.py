"""The ledger's stored tree hashes stay right whoever appends: writers that take turns on
one file, and a batch that fails half-way (its leaves must not linger in the writer's
in-memory right edge)."""

from __future__ import annotations

from pathlib import Path

import pytest

from govfn.chronicle import Ledger, Record, merkle
from govfn.chronicle.ledger import LedgerError


def make(n: int, tag: str) -> list[Record]:
    return [Record.build("TEST", {"tag": tag, "n": i}) for i in range(n)]


def check(ledger: Ledger) -> None:
    leaves = [merkle.leaf_hash(r.canonical) for r in ledger.records()]
    assert ledger.verify().ok
    assert ledger.head() == (len(leaves), merkle.root(leaves).hex())
    for old in range(len(leaves) + 1):
        proof = ledger.consistency(old)
        assert proof.proof == [h.hex() for h in merkle.consistency_proof(old, leaves)]


def test_writers_taking_turns_keep_one_tree(tmp_path: Path) -> None:
    first, second = Ledger(tmp_path / "c.db"), Ledger(tmp_path / "c.db")
    try:
        for turn in range(12):
            writer = first if turn % 3 else second
            writer.append(make(turn % 4 + 1, f"t{turn}"))
        check(first)
        check(second)
    finally:
        first.close()
        second.close()


def test_a_failed_batch_leaves_no_trace_in_the_tree(tmp_path: Path) -> None:
    writer, other = Ledger(tmp_path / "c.db"), Ledger(tmp_path / "c.db")
    try:
        writer.append(make(5, "a"))
        good = make(1, "good")[0]
        refused = good._replace(type=None)  # NOT NULL: the batch rolls back after `good`
        with pytest.raises(LedgerError):
            writer.append([good, refused])
        other.append(make(1, "other"))  # the tree is back at the size the failed batch saw
        writer.append(make(2, "b"))
        check(writer)
        assert len(writer) == 8
    finally:
        writer.close()
        other.close()
