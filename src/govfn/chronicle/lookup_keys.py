"""Lookup keys: the compact index through which a ledger finds records by CID.

A record is filed under the key of its own CID (by the statement that appends it) and
under the key of each CID or id that a lineage hop follows from it (`LINKS`: the trigger
event and input CIDs, the invocation id, the FUNCTION_INVOKED record a completion names,
the output and reply CIDs; filed later, in bulk, when lineage is first asked for: an
append would pay for several random index pages). A key is the first 8 bytes of BLAKE2b
of the text as a signed 64-bit integer (an SQLite INTEGER), so an index entry costs 16
bytes whatever the CID's length. Keys may collide: a lookup always compares the record's
own fields with what it was asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

LINKS = (
    "trigger_event_cid",
    "input_cid",
    "invocation_id",
    "invoked_cid",
    "output_cid",
    "reply_cid",
)


def lookup_key(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def link_keys(payload: Mapping[str, Any]) -> list[int]:
    """The keys of the links a record names, each once."""
    keys: dict[int, None] = {}
    for name in LINKS:
        value = payload.get(name)
        if isinstance(value, str) and value:
            keys.setdefault(lookup_key(value), None)
    return list(keys)
