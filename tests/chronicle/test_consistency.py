"""RFC 6962 consistency and inclusion proofs: `merkle` (from a list of leaves) and `tree`
(from stored subtree hashes) against a naive reference written here from RFC 6962
section 2.1, over many tree sizes; and `merkle`'s verifiers, which must refuse anything
else."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from govfn.chronicle import merkle, tree


def mth(data: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 section 2.1."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < len(data):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(data[:k]) + mth(data[k:])).digest()


def path(m: int, data: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 section 2.1.1."""
    if len(data) == 1:
        return []
    k = 1
    while k * 2 < len(data):
        k *= 2
    if m < k:
        return [*path(m, data[:k]), mth(data[k:])]
    return [*path(m - k, data[k:]), mth(data[:k])]


def subproof(m: int, data: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 6962 section 2.1.2."""
    if m == len(data):
        return [] if whole else [mth(data)]
    k = 1
    while k * 2 < len(data):
        k *= 2
    if m <= k:
        return [*subproof(m, data[:k], whole), mth(data[k:])]
    return [*subproof(m - k, data[k:], False), mth(data[:k])]


def proof(m: int, data: list[bytes]) -> list[bytes]:
    return subproof(m, data, True) if 0 < m < len(data) else []


def store_of(data: list[bytes], chunks: list[int]) -> tree.HashReader:
    """A node store filled the way a ledger fills it: appends of the given sizes."""
    stored: dict[int, bytes] = {}
    leaves = [merkle.leaf_hash(item) for item in data]
    size = 0
    for chunk in [*chunks, len(leaves)]:
        end = min(len(leaves), size + max(chunk, 1))
        pairs = tree.hashes_to_append(size, leaves[size:end], lambda ix: [stored[i] for i in ix])
        stored.update(pairs)
        size = end
        if size == len(leaves):
            break
    assert len(stored) == tree.stored_hash_count(len(leaves)) == max(stored, default=-1) + 1
    return lambda indexes: [stored[index] for index in indexes]


DATA = st.lists(st.binary(max_size=8), min_size=1, max_size=140)


@settings(max_examples=150, deadline=None)
@given(data=DATA, chunks=st.lists(st.integers(1, 40), max_size=12), pick=st.randoms())
def test_proofs_match_the_rfc_definitions(data: list[bytes], chunks: list[int], pick) -> None:  # type: ignore[no-untyped-def]
    n = len(data)
    leaves = [merkle.leaf_hash(item) for item in data]
    read = store_of(data, chunks)
    assert tree.tree_hash(n, read) == merkle.root(leaves) == mth(data)
    for m in {0, 1, n, pick.randrange(n + 1), pick.randrange(n + 1)}:
        expected = proof(m, data)
        assert merkle.consistency_proof(m, leaves) == expected
        assert tree.consistency_proof(m, n, read) == expected
        assert tree.roots_and_proof(m, n, read) == (mth(data[:m]), mth(data), expected)
        assert merkle.verify_consistency(m, n, mth(data[:m]), mth(data), expected)
    for index in {0, n - 1, pick.randrange(n)}:
        expected = path(index, data)
        assert merkle.inclusion_proof(index, leaves) == expected
        assert tree.inclusion_proof(index, n, read) == expected
        assert merkle.verify_inclusion(index, n, leaves[index], expected, mth(data))


@settings(max_examples=150, deadline=None)
@given(data=DATA.filter(lambda d: len(d) >= 2), pick=st.randoms())
def test_consistency_verifier_refuses_what_does_not_hold(data: list[bytes], pick) -> None:  # type: ignore[no-untyped-def]
    n = len(data)
    m = pick.randrange(1, n)
    good = proof(m, data)
    old, new = mth(data[:m]), mth(data)
    assert merkle.verify_consistency(m, n, old, new, good)
    edited = pick.randrange(m)  # a record inside the old tree is rewritten
    changed = [*data[:edited], b"rewritten" + data[edited], *data[edited + 1 :]]
    assert not merkle.verify_consistency(m, n, mth(changed[:m]), new, good)
    assert not merkle.verify_consistency(m, n, old, mth(changed), proof(m, changed))
    position = pick.randrange(len(good))
    flipped = bytearray(good[position])
    flipped[pick.randrange(32)] ^= 1 << pick.randrange(8)
    tampered = [*good[:position], bytes(flipped), *good[position + 1 :]]
    assert not merkle.verify_consistency(m, n, old, new, tampered)
    assert not merkle.verify_consistency(m, n, old, new, good[:-1])
    assert not merkle.verify_consistency(m, n, old, new, [*good, good[0]])
    assert not merkle.verify_consistency(m, n, new, old, good) or old == new
    assert not merkle.verify_consistency(n, m, new, old, good)


def test_edge_sizes() -> None:
    data = [bytes([i]) for i in range(9)]
    root = mth(data)
    assert merkle.verify_consistency(0, 9, mth([]), root, [])
    assert not merkle.verify_consistency(0, 9, mth([]), root, [root])
    assert merkle.verify_consistency(9, 9, root, root, [])
    assert not merkle.verify_consistency(9, 9, root, mth(data[:8]), [])
    assert merkle.verify_consistency(8, 9, mth(data[:8]), root, proof(8, data))  # a power of two
    assert tree.leaves_stored(tree.stored_hash_count(9)) == 9


def test_stored_hash_layout_is_gos() -> None:
    # golang.org/x/mod/sumdb/tlog's StoredHashIndex for the first leaves: leaf 0 -> 0,
    # leaf 1 -> 1, their parent -> 2, leaf 2 -> 3, leaf 3 -> 4, then (1, 1) -> 5, (2, 0) -> 6.
    assert [tree.stored_hash_index(0, n) for n in range(5)] == [0, 1, 3, 4, 7]
    assert [tree.stored_hash_index(1, 0), tree.stored_hash_index(1, 1)] == [2, 5]
    assert tree.stored_hash_index(2, 0) == 6
    assert [tree.stored_hash_count(n) for n in range(6)] == [0, 1, 3, 4, 7, 8]


@settings(max_examples=60, deadline=None)
@given(data=DATA, pick=st.randoms())
def test_a_packed_store_gives_the_same_proofs(data: list[bytes], pick) -> None:  # type: ignore[no-untyped-def]
    n = len(data)
    builder = tree.TreeBuilder()
    rows = {seq: builder.append_packed(merkle.leaf_hash(item)) for seq, item in enumerate(data, 1)}
    read = tree.packed_reader(lambda seqs: {seq: rows[seq] for seq in seqs if seq in rows})
    assert builder.root() == tree.tree_hash(n, read) == mth(data)
    resumed = tree.TreeBuilder.resume(n, read)  # a writer picking up where another stopped
    assert resumed.append_packed(merkle.leaf_hash(b"next")) == tree.TreeBuilder.resume(
        n, store_of(data, [])
    ).append_packed(merkle.leaf_hash(b"next"))
    m, index = pick.randrange(n + 1), pick.randrange(n)
    assert tree.consistency_proof(m, n, read) == proof(m, data)
    assert tree.inclusion_proof(index, n, read) == path(index, data)
    for stored in range(tree.stored_hash_count(n)):
        assert tree.stored_hash_index(*tree.split_stored_hash_index(stored)) == stored
