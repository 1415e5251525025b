"""What every Chronicle ledger offers, whichever database holds it.

Two backends implement `ChronicleLedger`: `ledger.Ledger`, one SQLite file (the embedded
default, one log), and `postgres_ledger.PostgresLedger`, shared tables in PostgreSQL where
each writing process appends to a log of its own. Both store the same records under the
same CIDs, chain each log's rows with `chain_next`, and build one RFC 6962 tree per log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol

from govfn.chronicle.records import Record

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


class ChronicleLedger(Protocol):
    """The surface the runtime, the CLI and the tests use, on either backend."""

    def prepare(self) -> None:
        """Create the store and its schema now; raise LedgerError when it cannot be reached."""

    def close(self) -> None: ...

    def append(self, records: Sequence[Record], *, dedupe: bool = False) -> None: ...

    def records(self) -> Iterator[Record]: ...

    def get(self, cid: str) -> Record | None: ...

    def proof(self, cid: str) -> InclusionProof: ...

    def verify(self) -> VerifyReport: ...

    def tree_heads(self) -> list[TreeHead]:
        """The current head of every log."""

    def checkpoint_logs(self) -> list[TreeHead]:
        """Store the current head of every log (later verification must reproduce it)."""

    def __len__(self) -> int: ...
