"""The Merkle tree of a log kept as stored subtree hashes, so that a root or a proof reads
O(log n) of them instead of rehashing n leaves. Backend-neutral: any store that keeps
(index, 32-byte hash) pairs beside its records works (the SQLite ledger, a PostgreSQL
table per log).

The layout is that of Go's golang.org/x/mod/sumdb/tlog: every complete subtree, from
single leaves up, is stored once, in the order the log completes them. Appending leaf n
stores its leaf hash and then the hash of each subtree that leaf completes, so the store
only ever grows at its end (on a B-tree, appends touch the last page alone):

    index(level, k) = index of the k-th subtree of 2**level leaves
    leaf n          -> index(0, n), then index(1, n >> 1), ... for each trailing 1 bit of n

A range [lo, hi) of leaves splits into at most 2 log2(hi - lo) complete, aligned
subtrees; its hash combines theirs right to left (RFC 6962 section 2.1).

Two ways to store them:
- by index: a writer calls `hashes_to_append(size, leaves, read)` in the transaction that
  appends the records and stores the (index, hash) pairs it returns;
- packed, one value per record (what the SQLite ledger does): a writer keeps a
  `TreeBuilder` (`TreeBuilder.resume(size, read)` after another writer appended) and
  stores `append_packed(leaf)` beside record seq = leaf index + 1; `packed_reader` turns a
  fetch of those values by seq into a `HashReader`.
Readers call `tree_hash`, `inclusion_proof`, `consistency_proof` or `roots_and_proof`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from hashlib import sha256 as _sha256

from govfn.chronicle import merkle

HashReader = Callable[[Sequence[int]], Sequence[bytes]]
"""Returns the stored hashes at the given indexes, in the same order (KeyError if absent)."""


def stored_hash_index(level: int, k: int) -> int:
    """Where the k-th subtree of 2**level leaves is stored: right after the stored hashes
    of its last leaf n = (k + 1) * 2**level - 1, whose own leaf hash is at
    n + n//2 + n//4 + ... = 2n - popcount(n)."""
    n = ((k + 1) << level) - 1
    return 2 * n - n.bit_count() + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """The (level, k) stored at `index`: the inverse of `stored_hash_index`."""
    n = index // 2  # the leaf whose group of stored hashes holds `index`
    start = stored_hash_index(0, n)
    while True:
        following = start + 1 + _trailing_ones(n)
        if following > index:
            break
        n, start = n + 1, following
    level = index - start
    return level, n >> level


def packed_location(index: int) -> tuple[int, int]:
    """(seq, byte offset) of stored hash `index` in a packed store: the subtree (level, k)
    ends at leaf (k + 1) * 2**level - 1, whose value holds it at offset 32 * level."""
    level, k = split_stored_hash_index(index)
    return (k + 1) << level, 32 * level


def packed_reader(fetch: Callable[[list[int]], Mapping[int, bytes]]) -> HashReader:
    """A `HashReader` over a packed store; `fetch(seqs)` returns {seq: packed value}."""

    def read(indexes: Sequence[int]) -> list[bytes]:
        places = [packed_location(index) for index in indexes]
        values = fetch(sorted({seq for seq, _ in places}))
        hashes = []
        for seq, offset in places:
            node = bytes(values.get(seq, b"")[offset : offset + 32])
            if len(node) != 32:
                raise KeyError(f"the tree hashes stored with record {seq} are missing")
            hashes.append(node)
        return hashes

    return read


def stored_hash_count(size: int) -> int:
    """How many hashes a tree of `size` leaves has stored."""
    if size == 0:
        return 0
    last = size - 1
    return stored_hash_index(0, last) + 1 + _trailing_ones(last)


def leaves_stored(count: int) -> int:
    """The tree size whose stored hashes number `count` (ValueError if none does)."""
    lo, hi = 0, count  # stored_hash_count(n) >= n, strictly increasing
    while lo < hi:
        mid = (lo + hi) // 2
        if stored_hash_count(mid) < count:
            lo = mid + 1
        else:
            hi = mid
    if stored_hash_count(lo) != count:
        raise ValueError(f"{count} stored hashes are not a whole tree (a write was cut short)")
    return lo


def _trailing_ones(n: int) -> int:
    return ((n + 1) & -(n + 1)).bit_length() - 1


def _subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """[lo, hi) as maximal complete aligned subtrees (level, k), left to right."""
    parts: list[tuple[int, int]] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        while lo & ((1 << level) - 1):
            level -= 1
        parts.append((level, lo >> level))
        lo += 1 << level
    return parts


def frontier_indexes(size: int) -> list[int]:
    """Stored indexes of the subtrees a tree of `size` leaves is made of (its right edge):
    one per 1 bit of `size`, largest first."""
    indexes = []
    lo = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            indexes.append(stored_hash_index(level, lo >> level))
            lo += 1 << level
    return indexes


def hashes_to_append(
    size: int, leaves: Sequence[bytes], read: HashReader
) -> list[tuple[int, bytes]]:
    """The (index, hash) pairs to store when `leaves` (leaf hashes) are appended to a tree
    of `size` leaves. Reads the tree's right edge once: popcount(size) hashes. (A writer
    that appends often keeps a `TreeBuilder` instead and reads nothing.)"""
    builder = TreeBuilder.resume(size, read)
    return [pair for leaf in leaves for pair in builder.append(leaf)]


def _range_hashes(ranges: Iterable[tuple[int, int]], read: HashReader) -> list[bytes]:
    """The Merkle tree hash of each leaf range, from one read of the subtrees they need."""
    plans = [_subtrees(lo, hi) for lo, hi in ranges]
    wanted = sorted({stored_hash_index(level, k) for plan in plans for level, k in plan})
    stored = dict(zip(wanted, read(wanted), strict=True)) if wanted else {}
    hashes: list[bytes] = []
    for plan in plans:
        parts = [stored[stored_hash_index(level, k)] for level, k in plan]
        current = parts[-1]
        for part in reversed(parts[:-1]):
            current = merkle.node_hash(part, current)
        hashes.append(current)
    return hashes


def tree_hash(size: int, read: HashReader) -> bytes:
    """The root of the tree of the first `size` leaves."""
    if size == 0:
        return merkle.EMPTY_ROOT
    return _range_hashes([(0, size)], read)[0]


def inclusion_proof(index: int, size: int, read: HashReader) -> list[bytes]:
    """RFC 6962 audit path of leaf `index` in the tree of `size` leaves."""
    return _range_hashes(merkle.inclusion_ranges(index, size), read)


def consistency_proof(old_size: int, new_size: int, read: HashReader) -> list[bytes]:
    """RFC 6962 consistency proof from the tree of `old_size` leaves to `new_size`."""
    return _range_hashes(merkle.consistency_ranges(old_size, new_size), read)


def roots_and_proof(
    old_size: int, new_size: int, read: HashReader
) -> tuple[bytes, bytes, list[bytes]]:
    """(old root, new root, consistency proof) from one read of the store."""
    ranges = [(0, old_size), (0, new_size), *merkle.consistency_ranges(old_size, new_size)]
    nonempty = [r for r in ranges if r[1] > r[0]]
    hashes = iter(_range_hashes(nonempty, read))
    values = [next(hashes) if hi > lo else merkle.EMPTY_ROOT for lo, hi in ranges]
    return values[0], values[1], values[2:]


class TreeBuilder:
    """Builds the stored hashes leaf by leaf in memory, keeping only the tree's right edge
    (at most log2 n hashes): for checking a store against the leaves, or filling one."""

    def __init__(self) -> None:
        self.size = 0
        self._edge: list[bytes] = []  # subtree hashes of the tree, largest first

    @classmethod
    def resume(cls, size: int, read: HashReader) -> TreeBuilder:
        """A builder continuing the stored tree of `size` leaves (reads its right edge)."""
        builder = cls()
        edge = frontier_indexes(size)
        builder.size, builder._edge = size, list(read(edge)) if edge else []
        return builder

    def append(self, leaf: bytes) -> list[tuple[int, bytes]]:
        """Add one leaf hash; return the (index, hash) pairs a store keeps for it."""
        n = self.size
        current = leaf
        stored = [(stored_hash_index(0, n), current)]
        for level in range(_trailing_ones(n)):
            current = merkle.node_hash(self._edge.pop(), current)
            stored.append((stored_hash_index(level + 1, n >> (level + 1)), current))
        self._edge.append(current)
        self.size = n + 1
        return stored

    def append_packed(self, leaf: bytes) -> bytes:
        """`append`, returning just the stored hashes, concatenated in index order (a
        store that keeps one row per leaf)."""
        n, current, edge = self.size, leaf, self._edge
        parts = [leaf]
        while n & 1:
            current = _sha256(b"\x01" + edge.pop() + current).digest()
            parts.append(current)
            n >>= 1
        edge.append(current)
        self.size += 1
        return b"".join(parts)

    def root(self) -> bytes:
        if not self._edge:
            return merkle.EMPTY_ROOT
        current = self._edge[-1]
        for part in reversed(self._edge[:-1]):
            current = merkle.node_hash(part, current)
        return current
