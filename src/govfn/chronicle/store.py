"""The values every Chronicle backend shares: the chain rule (`chain_next`), tree heads,
proofs, verify reports and the ledger's error. Both backends store the same records under
the same CIDs, chain each log's rows with `chain_next`, and build one RFC 6962 tree per
log (`log.Log`; the whole Chronicle: `chronicle.Chronicle`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from govfn.chronicle.tree import HashReader

GENESIS = b"\x00" * 32


class LedgerError(Exception):
    """The ledger cannot be opened or written."""


class TreeHead(NamedTuple):
    """One log's tree: its size and root (`log` is None for the single log of SQLite)."""

    log: int | None
    tree_size: int
    root: str

    def to_dict(self) -> dict[str, object]:
        head: dict[str, object] = {"tree_size": self.tree_size, "root": self.root}
        return head if self.log is None else {"log": self.log, **head}


class VerifyReport(NamedTuple):
    ok: bool
    records: int
    root: str
    problem: str | None = None
    bad_seq: int | None = None
    bad_cid: str | None = None
    bad_log: int | None = None
    heads: tuple[TreeHead, ...] = ()


class InclusionProof(NamedTuple):
    cid: str
    leaf_index: int
    tree_size: int
    leaf_hash: str
    audit_path: list[str]
    root: str
    log: int | None = None

    def to_dict(self) -> dict[str, object]:
        proof: dict[str, object] = {"algorithm": "RFC6962-SHA256", "cid": self.cid}
        if self.log is not None:
            proof["log"] = self.log
        return proof | {
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash,
            "audit_path": self.audit_path,
            "root": self.root,
        }


class ConsistencyProof(NamedTuple):
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    proof: list[str]

    def to_dict(self) -> dict[str, object]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": self.old_root,
            "new_root": self.new_root,
            "proof": self.proof,
        }


def chain_next(previous: bytes | None, leaf: bytes) -> bytes:
    return hashlib.sha256((previous or GENESIS) + leaf).digest()


def checked_reader(read: HashReader) -> HashReader:
    """`read`, with a missing stored hash (a record written before the stored hashes, or
    removed) raised as a LedgerError naming it."""

    def read_or_fail(indexes: Sequence[int]) -> Sequence[bytes]:
        try:
            return read(indexes)
        except KeyError as exc:
            raise LedgerError(f"Chronicle ledger: {exc.args[0]}") from None

    return read_or_fail
