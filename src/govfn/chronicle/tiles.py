"""A log as C2SP tlog-tiles (c2sp.org/tlog-tiles): the read endpoints under a log's prefix.

    checkpoint                      the latest signed checkpoint, with its cosignatures
    tile/<L>/<N>[.p/<W>]            hash tiles: 256 (or W) hashes of level 8L of the tree
    tile/entries/<N>[.p/<W>]        entry bundles: big-endian uint16 length, then the entry

An entry is a record's canonical JSON bytes, so its RFC 6962 leaf hash is the level-0
tile hash. The hash of tile L, position i, is the Merkle tree hash of leaves
[i * 256**L, (i + 1) * 256**L): the subtree of height 8L that `tree.py` stores at
`stored_hash_index(8 * L, i)`, so a tile is one read of 256 stored hashes, whatever its
level. `<N>` is written in 3-digit groups, all but the last prefixed `x` (x001/x234/067).

What is served depends on the signed checkpoints stored beside the log, never on its
unsigned head: a full tile once the latest checkpoint covers it, a partial tile of width
W when some checkpoint's size needs it (floor(size / 256**L) = 256 N + W, one query for
a note of a size in that range), so that every checkpointed size stays provable. Every
tile and bundle is immutable; nothing is served for a log with no signed checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

from govfn.chronicle import tree
from govfn.chronicle.signing.checkpoint import Checkpoint, CheckpointError
from govfn.chronicle.signing.note import NoteError, parse

__all__ = [
    "ENTRY_LIMIT",
    "SQLITE_LOG",
    "TILE_WIDTH",
    "Published",
    "TileError",
    "TileLog",
    "TileRequest",
    "bundle",
    "checkpointed_sizes",
    "entry_bundle",
    "format_index",
    "hash_tile",
    "log_path_name",
    "parse_tile_path",
    "published",
    "read_tile",
    "tile_paths",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
HASH_SIZE = 32
ENTRY_LIMIT = 0xFFFF  # an entry's length is a big-endian uint16
MAX_LEVEL = 63
MAX_SIZE = 1 << 62  # above any tree size (PostgreSQL keeps them as bigint)
_GROUP = re.compile(r"[0-9]{3}")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_LEVEL = re.compile(r"0|[1-9][0-9]?")
SQLITE_LOG = "default"


def log_path_name(name: str | None) -> str:
    """A log's name in paths: `default` for the one log of SQLite, a PostgreSQL log's id."""
    return SQLITE_LOG if name is None else name


class TileError(ValueError):
    """A tile path is malformed, or an entry cannot be bundled."""


class TileLog(Protocol):
    """What serving a log as tiles reads (a `log.Log`, whichever backend stores it)."""

    def signed_checkpoints(self) -> list[str]: ...
    def signed_notes(self, lo: int, hi: int, limit: int) -> list[str]:
        """Up to `limit` stored notes of tree sizes in [lo, hi), the newest first."""

    def stored_hashes(self, indexes: Sequence[int]) -> Sequence[bytes]: ...
    def bodies(self, start: int, end: int) -> list[bytes]:
        """The canonical bytes of the records at leaf indexes [start, end)."""


class TileRequest(NamedTuple):
    level: int | None  # None: an entry bundle
    n: int  # the tile's index in its level
    width: int  # TILE_WIDTH for a full tile

    @property
    def partial(self) -> bool:
        return self.width < TILE_WIDTH

    def path(self) -> str:
        level = "entries" if self.level is None else str(self.level)
        suffix = f".p/{self.width}" if self.partial else ""
        return f"tile/{level}/{format_index(self.n)}{suffix}"


def format_index(n: int) -> str:
    """`<N>` of a tile path: 1234067 -> x001/x234/067."""
    if n < 0:
        raise ValueError(f"tile index {n} is negative")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if not n:
            break
    groups.reverse()
    return "/".join([*(f"x{group}" for group in groups[:-1]), groups[-1]])


def parse_tile_path(path: str) -> TileRequest:
    """Read `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]` (TileError if it is not
    one, or not in the canonical form a log serves)."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise TileError(f"not a tile path: {path!r}")
    level_text, rest = parts[1], parts[2:]
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        if not _WIDTH.fullmatch(rest[-1]) or int(rest[-1]) >= TILE_WIDTH:
            raise TileError(f"partial tile width {rest[-1]!r} is not 1..255")
        width = int(rest[-1])
        rest = [*rest[:-2], rest[-2][:-2]]
    if level_text == "entries":
        level = None
    elif _LEVEL.fullmatch(level_text) and int(level_text) <= MAX_LEVEL:
        level = int(level_text)
    else:
        raise TileError(f"tile level {level_text!r} is not 0..63 or 'entries'")
    *upper, last = rest
    if not _GROUP.fullmatch(last) or not all(
        g.startswith("x") and _GROUP.fullmatch(g[1:]) for g in upper
    ):
        raise TileError(f"tile index {'/'.join(rest)!r} is not 3-digit groups (x001/234)")
    if upper and upper[0] == "x000":
        raise TileError(f"tile index {'/'.join(rest)!r} has a leading zero group")
    index = 0
    for group in [*(g[1:] for g in upper), last]:
        index = index * 1000 + int(group)
    return TileRequest(level, index, width)


class Published(NamedTuple):
    """A log's latest signed checkpoint: the note verbatim (with any cosignatures)."""

    note: str
    checkpoint: Checkpoint

    @property
    def size(self) -> int:
        return self.checkpoint.tree_size

    def serves(self, request: TileRequest, log: TileLog) -> bool:
        """Whether the log publishes this tile or bundle: a full one once this checkpoint
        covers it, a partial one when a stored checkpoint's size needs it (one indexed
        query: however many notes are stored, none is read beyond the first match)."""
        level = request.level or 0
        shift = TILE_HEIGHT * level
        if not request.partial:
            return (request.n + 1) << (shift + TILE_HEIGHT) <= self.size
        wanted = request.n * TILE_WIDTH + request.width  # = floor(size / 256**level)
        return bool(log.signed_notes(wanted << shift, (wanted + 1) << shift, 1))


def _checkpoint(text: str) -> Checkpoint | None:
    try:
        return Checkpoint.parse(parse(text).text)
    except (NoteError, CheckpointError):
        return None  # `verify` reports a damaged note; a reader gets the others


def published(log: TileLog) -> Published | None:
    """The log's latest signed checkpoint (the largest tree; of equal trees the one stored
    last, which carries the most cosignatures); None when no signed checkpoint is stored."""
    for text in log.signed_notes(0, MAX_SIZE, 8):
        checkpoint = _checkpoint(text)
        if checkpoint is not None:
            return Published(text, checkpoint)
    return None


def checkpointed_sizes(log: TileLog) -> set[int]:
    """Every tree size a stored checkpoint signs (reads every note: for static copies)."""
    return {c.tree_size for c in map(_checkpoint, log.signed_checkpoints()) if c is not None}


def hash_tile(request: TileRequest, read: tree.HashReader) -> bytes:
    """The hashes of a tile: positions n * 256 + j of level 8L, j < width."""
    assert request.level is not None
    level, first = TILE_HEIGHT * request.level, request.n * TILE_WIDTH
    indexes = [tree.stored_hash_index(level, first + j) for j in range(request.width)]
    return b"".join(read(indexes))


def bundle(entries: Sequence[bytes], first: int = 0) -> bytes:
    """Entries as a tlog-tiles bundle (TileError names an entry too long for one)."""
    parts: list[bytes] = []
    for offset, entry in enumerate(entries):
        if len(entry) > ENTRY_LIMIT:
            raise TileError(
                f"entry {first + offset} is {len(entry)} bytes, over the {ENTRY_LIMIT}-byte "
                "limit of a tlog-tiles entry"
            )
        parts += (len(entry).to_bytes(2, "big"), entry)
    return b"".join(parts)


def entry_bundle(request: TileRequest, log: TileLog) -> bytes:
    first = request.n * TILE_WIDTH
    entries = log.bodies(first, first + request.width)
    if len(entries) != request.width:
        raise TileError(f"the log holds {len(entries)} of the {request.width} entries wanted")
    return bundle(entries, first)


def read_tile(log: TileLog, request: TileRequest, latest: Published) -> bytes | None:
    """The bytes of a tile or bundle, or None when the log does not publish it."""
    if not latest.serves(request, log):
        return None
    if request.level is None:
        return entry_bundle(request, log)
    return hash_tile(request, log.stored_hashes)


def tile_paths(size: int, sizes: Iterable[int]) -> list[TileRequest]:
    """Every tile and bundle a log publishes with its latest checkpoint at `size` and
    checkpoints at `sizes`: the full ones of `size`, the partial ones of each size."""
    wanted: list[TileRequest] = []
    level = 0
    while size >> (TILE_HEIGHT * level):
        full = size >> (TILE_HEIGHT * (level + 1))
        for index in range(full):
            if level == 0:
                wanted.append(TileRequest(None, index, TILE_WIDTH))
            wanted.append(TileRequest(level, index, TILE_WIDTH))
        level += 1
    seen = set(wanted)
    for checkpointed in sorted({*sizes, size}):
        level = 0
        while checkpointed >> (TILE_HEIGHT * level):
            index, width = divmod(checkpointed >> (TILE_HEIGHT * level), TILE_WIDTH)
            partial = [TileRequest(level, index, width)] if width else []
            if width and level == 0:
                partial.insert(0, TileRequest(None, index, width))
            for request in partial:
                if request not in seen:
                    seen.add(request)
                    wanted.append(request)
            level += 1
    return wanted
