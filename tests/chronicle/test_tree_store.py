"""The ledger's stored tree hashes stay right whoever appends: writers that take turns on
one file, and a batch that fails half-way (its leaves must not linger in the writer's
in-memory right edge)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from govfn.chronicle import Ledger, Record, merkle
from govfn.chronicle.sqlite.ledger import LedgerError


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


APPEND_IN_ANOTHER_PROCESS = """
import sys
from govfn.chronicle import Ledger, Record
with Ledger(sys.argv[1]) as ledger:
    for n in range(int(sys.argv[2])):
        ledger.append([Record.build("TEST", {"tag": "other process", "n": n})])
"""


def test_a_writer_continues_after_another_process_appended(tmp_path: Path) -> None:
    """A writer keeps the chain and the tree's right edge of its last append; records that
    another process appended since must be built on, not overwritten or forked from."""
    writer = Ledger(tmp_path / "c.db")
    try:
        writer.append(make(3, "a"))
        for count in (1, 4):
            done = subprocess.run(
                [sys.executable, "-c", APPEND_IN_ANOTHER_PROCESS, str(writer.path), str(count)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            writer.append(make(2, f"after {count}"))
        assert len(writer) == 3 + 1 + 2 + 4 + 2
        check(writer)
    finally:
        writer.close()
