"""Percent-encoding (RFC 3986 section 2.1), decoded strictly, and the hex digits it uses."""

from __future__ import annotations

HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def percent_decode(octets: bytes) -> bytes:
    """Each `%XX` as its octet; ValueError when a `%` is not followed by two hex digits."""
    head, *parts = octets.split(b"%")
    out = bytearray(head)
    for part in parts:
        if len(part) < 2 or part[0] not in HEX_DIGITS or part[1] not in HEX_DIGITS:
            raise ValueError("malformed percent-encoding")
        out.append(int(part[:2], 16))
        out += part[2:]
    return bytes(out)
