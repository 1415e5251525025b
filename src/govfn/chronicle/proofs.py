"""Inclusion proofs as files (c2sp.org/tlog-proof@v1), checked offline:

    c2sp.org/tlog-proof@v1
    extra <base64 of the record's canonical JSON: the entry, whose CID is the record's>
    index <leaf index>
    <base64 hash>            the RFC 6962 audit path, the leaf's sibling first
    ...
    <empty line>
    <the checkpoint note verbatim, with its cosignatures>

A record's proof is made against the latest signed checkpoint of its log (the one the
tiles serve), so it verifies with the log's verifier key and the witnesses' keys alone:
the `extra` line carries the record's bytes, which a verifier trusts only once their CID
is the one it asked about (a billing line's `chronicle_cid`) and their leaf hash is
proven in the signed tree. The file ends with the note's last signature
line: nothing follows it (Go's note parser refuses a trailing empty line).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, NamedTuple

from govfn.chronicle import merkle, tree
from govfn.chronicle.tiles import published

if TYPE_CHECKING:
    from govfn.chronicle.chronicle import Chronicle

HEADER = "c2sp.org/tlog-proof@v1"


class ProofError(ValueError):
    """No tlog-proof can be made (or a file is not one)."""


class TlogProof(NamedTuple):
    leaf_index: int
    path: list[bytes]
    note: str
    extra: bytes | None = None

    def text(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {base64.b64encode(self.extra).decode()}")
        lines.append(f"index {self.leaf_index}")
        lines += [base64.b64encode(node).decode() for node in self.path]
        return "\n".join(lines) + "\n\n" + self.note

    @classmethod
    def parse(cls, text: str) -> TlogProof:
        head, separator, note = text.partition("\n\n")
        lines = head.split("\n")
        if not separator or lines[0] != HEADER:
            raise ProofError(f"not a {HEADER} file")
        extra = None
        rest = lines[1:]
        if rest and rest[0].startswith("extra "):
            extra = base64.b64decode(rest.pop(0)[len("extra ") :], validate=True)
        if not rest or not rest[0].startswith("index "):
            raise ProofError("no index line")
        index_text = rest.pop(0)[len("index ") :]
        if not index_text.isdigit() or (index_text != "0" and index_text.startswith("0")):
            raise ProofError(f"index {index_text!r} is not a decimal number")
        path = [base64.b64decode(line, validate=True) for line in rest]
        if any(len(node) != 32 for node in path):
            raise ProofError("a proof line is not a base64 SHA-256 hash")
        return cls(int(index_text), path, note, extra)

    def includes(self, entry: bytes, tree_size: int, root: bytes) -> bool:
        """Whether the path proves `entry` at `leaf_index` in the tree (tree_size, root)."""
        leaf = merkle.leaf_hash(entry)
        return merkle.verify_inclusion(self.leaf_index, tree_size, leaf, self.path, root)


def record_proof(ledger: Chronicle, cid: str) -> TlogProof:
    """The tlog-proof of a record against its log's latest signed checkpoint (KeyError if
    the ledger does not hold it; ProofError if no signed checkpoint covers it yet)."""
    found = ledger.locate(cid)
    if found is None:
        raise KeyError(cid)
    log, index = found
    checkpoints = published(log)
    if checkpoints is None:
        raise ProofError(
            "the log has no signed checkpoint (set GOVFN_CHRONICLE_SIGNING_KEY, or run "
            "`govfn chronicle checkpoint --key`)"
        )
    if checkpoints.size <= index:
        raise ProofError(
            f"record {cid} is leaf {index}, after the latest signed checkpoint "
            f"(tree size {checkpoints.size}): ask again after the next one"
        )
    path = tree.inclusion_proof(index, checkpoints.size, log.stored_hashes)
    (entry,) = log.bodies(index, index + 1)
    return TlogProof(index, path, checkpoints.note, entry)
