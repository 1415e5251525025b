"""Chunked request bodies (RFC 9112 section 7.1), decoded as they arrive.

Chunk extensions are ignored (but a control character in one is refused) and trailer
fields read and dropped; chunk-size lines, the body and the trailer section are bounded.
Malformed framing is a `WireError` naming the body (400, or 431 for a trailer section over
the header limits); a body over its limit is `BodyTooLarge`.
"""

from __future__ import annotations

import re

from govfn.percent import HEX_DIGITS
from govfn.server.wire import MAX_FIELD_SIZE, MAX_HEADER_FIELDS, WireError

MAX_CHUNK_LINE = 1024

_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # HTAB is whitespace, not a control


class ChunkedBody:
    """Decodes a chunked body fed in pieces; `feed()` returns the bytes it did not use once
    the last chunk and the trailer section are read, None while it wants more."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.body = bytearray()
        self._pending = b""
        self._need = -1  # bytes of chunk data still to read; -1: a size line comes next
        self._trailers = -1  # trailer lines read; -1: not in the trailer section yet

    def feed(self, data: bytes) -> bytes | None:
        buffer = self._pending + data if self._pending else data
        position = 0
        while True:
            if self._need > 0:
                take = min(self._need, len(buffer) - position)
                self.body += buffer[position : position + take]
                position += take
                self._need -= take
                if self._need:
                    self._pending = b""
                    return None
                self._need = -2  # the CRLF after the data
            end = buffer.find(b"\r\n", position)
            if end < 0:
                if len(buffer) - position > MAX_CHUNK_LINE:
                    raise WireError(400, "chunk line too long", "body")
                self._pending = buffer[position:]
                return None
            line = buffer[position:end]
            position = end + 2
            if self._need == -2:
                if line:
                    raise WireError(400, "chunk data longer than its size", "body")
                self._need = -1
            elif self._trailers >= 0:
                if not line:
                    self._pending = b""
                    return buffer[position:]
                self._trailers += 1
                if self._trailers > MAX_HEADER_FIELDS or len(line) > MAX_FIELD_SIZE:
                    raise WireError(431, "trailer section too large", "body")
            else:
                size = chunk_size(line)
                if len(self.body) + size > self.limit:
                    raise BodyTooLarge(self.limit)
                if size == 0:
                    self._trailers = 0
                else:
                    self._need = size


def chunk_size(line: bytes) -> int:
    """`chunk-size [ chunk-ext ]` (RFC 9112 section 7.1.1): hex digits, then nothing or
    extensions, which may follow whitespace (BWS) and may not hold control characters."""
    digits, semicolon, extensions = line.partition(b";")
    if semicolon:
        if _CONTROL.search(extensions):
            raise WireError(400, "a chunk extension holds a control character", "body")
        digits = digits.rstrip(b" \t")
    if not digits or len(digits) > 15 or not all(byte in HEX_DIGITS for byte in digits):
        raise WireError(400, "malformed chunk size", "body")
    return int(digits, 16)


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body is over the {limit}-byte limit")
        self.limit = limit
