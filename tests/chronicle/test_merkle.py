"""The Merkle tree against RFC 6962's recursive definition; proofs verify and fail."""

from __future__ import annotations

import hashlib

import pytest

from govfn.chronicle import merkle


def rfc6962_root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(rfc6962_root(leaves[:k]), rfc6962_root(leaves[k:]))


def leaves_of(n: int) -> list[bytes]:
    return [merkle.leaf_hash(str(i).encode()) for i in range(n)]


def test_empty_tree_root() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", range(1, 70))
def test_root_matches_recursive_definition(n: int) -> None:
    assert merkle.root(leaves_of(n)) == rfc6962_root(leaves_of(n))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 33])
def test_every_inclusion_proof_verifies(n: int) -> None:
    leaves = leaves_of(n)
    root = merkle.root(leaves)
    for index in range(n):
        path = merkle.inclusion_proof(index, leaves)
        assert merkle.verify_inclusion(index, n, leaves[index], path, root)


def test_tampered_proofs_fail() -> None:
    leaves = leaves_of(11)
    root = merkle.root(leaves)
    path = merkle.inclusion_proof(6, leaves)
    assert not merkle.verify_inclusion(6, 11, leaves[5], path, root)  # wrong leaf
    assert not merkle.verify_inclusion(5, 11, leaves[6], path, root)  # wrong index
    assert not merkle.verify_inclusion(6, 11, leaves[6], path[:-1], root)  # short path
    bad = [path[0][::-1], *path[1:]]
    assert not merkle.verify_inclusion(6, 11, leaves[6], bad, root)
    assert not merkle.verify_inclusion(6, 7, leaves[6], path, root)  # wrong size
