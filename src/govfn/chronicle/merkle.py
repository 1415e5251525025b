"""RFC 6962 / RFC 9162 Merkle tree hashes, inclusion and consistency proofs, and their checks.

    leaf hash  = SHA-256(0x00 || record bytes)
    node hash  = SHA-256(0x01 || left || right)

The tree over n leaves splits at k, the largest power of two smaller than n
(RFC 6962 section 2.1). A proof is a list of subtree hashes; `inclusion_ranges` and
`consistency_ranges` say which leaf ranges [lo, hi) they cover (RFC 6962 PATH and
PROOF), so any store that can hash a range (`tree.py` reads stored subtree hashes;
`inclusion_proof` here hashes a list of leaves) yields the same proof.

`verify_inclusion` and `verify_consistency` need nothing but this module and the
standard library, so a third party can check a proof with a copy of this file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash of the leaf hashes (SHA-256 of "" for an empty tree)."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    # Bottom-up pairing yields the same tree as RFC 6962's recursive split: a leftover
    # odd node is carried up unchanged.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_ranges(index: int, tree_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form the audit path of leaf `index`, bottom up."""
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} outside a tree of {tree_size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, tree_size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form the RFC 6962 consistency proof (PROOF(m, D[n]))."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from tree size {old_size} to {new_size}")
    ranges: list[tuple[int, int]] = []
    if old_size in (0, new_size):
        return ranges
    m, lo, hi, whole = old_size, 0, new_size, True  # SUBPROOF(m, D[lo:hi], whole)
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            m, lo, whole = m - k, lo + k, False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Audit path of leaf `index` in the tree over `leaves` (RFC 6962 PATH)."""
    return [root(leaves[lo:hi]) for lo, hi in inclusion_ranges(index, len(leaves))]


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Proof that the tree over `leaves[:old_size]` is a prefix of the tree over `leaves`."""
    return [root(leaves[lo:hi]) for lo, hi in consistency_ranges(old_size, len(leaves))]


def verify_inclusion(
    index: int, tree_size: int, leaf: bytes, path: Sequence[bytes], expected_root: bytes
) -> bool:
    """Check an audit path (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < tree_size:
        return False
    fn, sn = index, tree_size - 1
    current = leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            current = node_hash(sibling, current)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            current = node_hash(current, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and current == expected_root


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Check that the tree (old_size, old_root) is a prefix of (new_size, new_root)
    (RFC 9162 section 2.1.4.2). Every tree extends the empty one."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == 0:
        return not proof
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
