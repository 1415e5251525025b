"""One log of the Chronicle, written once over whatever stores it.

A log is a sequence of records numbered 1, 2, 3..., chained (`store.chain_next`) and
hashed into one RFC 6962 tree whose subtree hashes are stored beside the records (layout
in `tree.py`). `Log` holds everything that follows from that: the tree head, inclusion
and consistency proofs, the verify walk, and the checkpoint rule (a stored tree head that
later verification must reproduce). It reads the log through a `LogStorage`, the little a
backend must offer: the log's size and its stored hashes (Go's sumdb/tlog `HashReader`),
its rows in order, and its stored checkpoints. The SQLite ledger's file is one such log
(`sqlite.storage.FileLog`); the PostgreSQL ledger holds one per writer
(`postgres.storage.TableLog`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

from govfn.chronicle import merkle, tree
from govfn.chronicle.cid import cid_of_canonical
from govfn.chronicle.store import (
    GENESIS,
    ConsistencyProof,
    InclusionProof,
    TreeHead,
    VerifyReport,
    chain_next,
)

__all__ = ["Entry", "Log", "LogStorage"]


class Entry(NamedTuple):
    """One stored record as the verify walk reads it: its position, CID, canonical bytes,
    stored chain value, and the tree hashes stored with it (packed, `tree.TreeBuilder.
    append_packed`; None when none are stored)."""

    seq: int
    cid: str
    body: bytes
    chain: bytes
    hashes: bytes | None


class LogStorage(Protocol):
    """What a backend stores of one log; `Log` asks nothing else of it."""

    @property
    def log_id(self) -> int | None:
        """The log's id among several (PostgreSQL), None for the one log of a SQLite file."""

    def reading(self) -> AbstractContextManager[tuple[int, tree.HashReader]]:
        """The log's size and a reader of its stored tree hashes, on one connection
        (a missing hash is a LedgerError)."""

    def entries(self) -> Iterator[Entry]:
        """Every record of the log, by position."""

    def hashes_beyond(self, size: int) -> bool:
        """Whether tree hashes are stored for records past `size` (records removed)."""

    def checkpoints(self) -> dict[int, bytes]:
        """The stored tree heads: root by tree size."""

    def store_checkpoint(self, tree_size: int, root: bytes) -> None: ...

    def store_signed_checkpoint(self, tree_size: int, root: bytes, note: str) -> bool:
        """Keep a signed checkpoint note (and its tree head) and queue it for the sink when
        the store queues records, in one transaction; False if this note, or one of a
        larger tree of this log, is stored already (a witness takes only growing trees)."""

    def signed_checkpoints(self) -> list[str]:
        """The signed checkpoint notes of the log, oldest first."""


class Log:
    """One log: its tree head, proofs, verification and checkpoints (a
    `witness.CheckpointLog`), each from O(log n) stored hashes but `verify`."""

    def __init__(self, storage: LogStorage) -> None:
        self.storage = storage

    @property
    def log_id(self) -> int | None:
        return self.storage.log_id

    def _named(self) -> str:
        return "the log" if self.log_id is None else f"log {self.log_id}"

    def __repr__(self) -> str:
        return f"Log({self.log_id!r})"

    def size(self) -> int:
        with self.storage.reading() as (size, _):
            return size

    def head(self) -> tuple[int, str]:
        """(tree size, root hex) of the log."""
        with self.storage.reading() as (size, read):
            return size, tree.tree_hash(size, read).hex()

    def root_at(self, size: int) -> bytes:
        """The root of the tree of the first `size` records."""
        with self.storage.reading() as (current, read):
            if not 0 <= size <= current:
                raise ValueError(f"tree size {size} outside {self._named()}")
            return tree.tree_hash(size, read)

    def inclusion_proof(
        self, index: int, tree_size: int | None = None, *, cid: str = ""
    ) -> InclusionProof:
        """RFC 6962 audit path of leaf `index` in the tree of `tree_size` (default: all)."""
        with self.storage.reading() as (current, read):
            size = current if tree_size is None else tree_size
            if not 0 <= index < size or size > current:
                where = "" if self.log_id is None else f" in log {self.log_id}"
                raise ValueError(f"no leaf {index} in a tree of {size}{where}")
            path = tree.inclusion_proof(index, size, read)
            (leaf,) = read([tree.stored_hash_index(0, index)])
            root = tree.tree_hash(size, read)
        return InclusionProof(
            cid=cid,
            leaf_index=index,
            tree_size=size,
            leaf_hash=leaf.hex(),
            audit_path=[node.hex() for node in path],
            root=root.hex(),
            log=self.log_id,
        )

    def consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """RFC 6962 consistency proof from tree size `old_size` to `new_size` (default: all)."""
        with self.storage.reading() as (current, read):
            new = current if new_size is None else new_size
            if not 0 <= old_size <= new <= current:
                where = "a log" if self.log_id is None else f"log {self.log_id}"
                raise ValueError(
                    f"no consistency proof from tree size {old_size} to {new} "
                    f"in {where} of {current} records"
                )
            old_root, new_root, proof = tree.roots_and_proof(old_size, new, read)
        return ConsistencyProof(
            old_size, new, old_root.hex(), new_root.hex(), [node.hex() for node in proof]
        )

    # -- checkpoints ------------------------------------------------------------------

    def checkpoint(self) -> TreeHead:
        """Store the current tree head (size, root), which later verification must still
        reproduce, and return it."""
        size, root = self.head()
        self.storage.store_checkpoint(size, bytes.fromhex(root))
        return TreeHead(self.log_id, size, root)

    def store_signed_checkpoint(self, tree_size: int, root: bytes, note: str) -> bool:
        return self.storage.store_signed_checkpoint(tree_size, root, note)

    def signed_checkpoints(self) -> list[str]:
        return self.storage.signed_checkpoints()

    # -- verification -----------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Recompute every CID, the chain, the tree and its stored hashes, and every stored
        checkpoint. One pass over the records; memory O(log n)."""
        checkpoints = self.storage.checkpoints()
        chain = GENESIS
        built = tree.TreeBuilder()
        roots_at: dict[int, bytes] = {}

        def bad(problem: str, seq: int | None = None, cid: str | None = None) -> VerifyReport:
            if self.log_id is not None:
                problem = f"log {self.log_id}: {problem}"
            root = built.root().hex()
            return VerifyReport(False, built.size, root, problem, seq, cid, self.log_id)

        for expected_seq, entry in enumerate(self.storage.entries(), start=1):
            seq, cid, body = entry.seq, entry.cid, entry.body
            if seq != expected_seq:
                return bad(f"record {expected_seq} is missing", seq, cid)
            if cid_of_canonical(body) != cid:
                return bad("content does not match its CID", seq, cid)
            leaf = merkle.leaf_hash(body)
            chain = chain_next(chain, leaf)
            if chain != entry.chain:
                return bad("hash chain broken (altered, removed or reordered)", seq, cid)
            expected = built.append_packed(leaf)
            if entry.hashes is None:
                return bad(
                    "its Merkle tree hashes are not stored (proofs cannot be made)", seq, cid
                )
            if entry.hashes != expected:
                return bad(
                    "its stored Merkle tree hashes do not match the records "
                    "(proofs from them would not hold)",
                    seq,
                    cid,
                )
            if seq in checkpoints:
                roots_at[seq] = built.root()
        for size, stored_root in sorted(checkpoints.items()):
            if size > built.size:
                return bad(f"checkpoint at size {size} but only {built.size} records")
            if roots_at.get(size, merkle.EMPTY_ROOT) != stored_root:
                return bad(f"checkpoint at size {size} no longer matches the tree")
        if self.storage.hashes_beyond(built.size):
            return bad(f"records after record {built.size} are missing (their hashes are stored)")
        return VerifyReport(True, built.size, built.root().hex())
