"""An independent tlog-tiles client (c2sp.org/tlog-tiles), written from the spec alone:
it imports nothing of govfn. It fetches a log's checkpoint, verifies its signature with
`spec_note` (itself written from c2sp.org/signed-note and RFC 8032), reads every entry
bundle and level-0 tile the checkpoint needs, hashes each entry (RFC 6962: SHA-256 of
0x00 || entry), checks that the tiles hold those hashes and that the higher-level tiles
hold the Merkle tree hashes of the full tiles below, recomputes the root of the whole
tree from the entries and compares it with the checkpoint's root.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from support.spec_note import verify_note

Fetch = Callable[[str], bytes]


def http_fetch(prefix: str, headers: dict[str, str] | None = None) -> Fetch:
    def fetch(path: str) -> bytes:
        request = urllib.request.Request(prefix + path, headers=headers or {})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
            data: bytes = answer.read()
            return data

    return fetch


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, over leaf hashes: split at the largest power of two < n."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


def tile_index(n: int) -> str:
    """<N> in zero-padded 3-digit path elements, all but the last beginning with x."""
    text = str(n)
    text = "0" * (-len(text) % 3) + text
    groups = [text[i : i + 3] for i in range(0, len(text), 3)]
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def tile_path(level: str, n: int, width: int) -> str:
    return f"tile/{level}/{tile_index(n)}" + (f".p/{width}" if width < 256 else "")


def read_bundle(data: bytes) -> list[bytes]:
    entries, at = [], 0
    while at < len(data):
        assert at + 2 <= len(data), "truncated length prefix"
        length = int.from_bytes(data[at : at + 2], "big")
        assert at + 2 + length <= len(data), "truncated entry"
        entries.append(data[at + 2 : at + 2 + length])
        at += 2 + length
    return entries


@dataclass
class Audit:
    origin: str
    size: int
    root: bytes
    entries: list[bytes] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)


def audit(fetch: Fetch, vkey: str) -> Audit:
    """Read and check the whole log the checkpoint at `fetch("checkpoint")` signs."""
    text = verify_note(fetch("checkpoint"), vkey)
    origin, size_text, root64 = text.split("\n")[:3]
    size, root = int(size_text), base64.b64decode(root64)
    result = Audit(origin, size, root)

    def get(path: str) -> bytes:
        result.fetched.append(path)
        return fetch(path)

    leaves: list[bytes] = []
    for n in range((size + 255) // 256):
        width = min(256, size - n * 256)
        entries = read_bundle(get(tile_path("entries", n, width)))
        assert len(entries) == width, f"bundle {n}: {len(entries)} entries, {width} wanted"
        hashes = [leaf_hash(entry) for entry in entries]
        tile = get(tile_path("0", n, width))
        assert tile == b"".join(hashes), f"level-0 tile {n} does not hold the entries' hashes"
        result.entries += entries
        leaves += hashes
    level, below = 1, [b"".join(leaves[i : i + 256]) for i in range(0, len(leaves), 256)]
    while size >> (8 * level):
        count = size >> (8 * level)
        # each hash of level L is the MTH of one full tile of level L-1
        full_below = [tile for tile in below if len(tile) == 256 * 32]
        expected = [mth([t[i : i + 32] for i in range(0, len(t), 32)]) for t in full_below]
        tiles = []
        for n in range((count + 255) // 256):
            width = min(256, count - n * 256)
            tile = get(tile_path(str(level), n, width))
            assert tile == b"".join(expected[n * 256 : n * 256 + width]), f"tile {level}/{n}"
            tiles.append(tile)
        level, below = level + 1, tiles
    assert mth(leaves) == root, "the entries do not hash to the checkpoint's root"
    return result
