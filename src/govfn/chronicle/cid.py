"""Content identifiers: CIDv1 over RFC 8785 canonical JSON (codec json) or raw bytes.

    cid = "b" + base32lower(varint(1) + varint(codec) + multihash(sha2-256, digest))

`canonical_json` writes through orjson with sorted keys, which gives the RFC 8785 form of
strings, of integers up to 2**53 (`OPT_STRICT_INTEGER` refuses larger ones), of keys inside
the Basic Multilingual Plane (RFC 8785 sorts keys by UTF-16 code units, which there is code
point order), and of the floats that ECMAScript writes as Python's `repr` does
(non-integral, 1e-4 <= |x| < 1e16). A walk over the value first (`_fast_form`) keeps
everything else off that path: other floats are written by `ecmascript_number` into the
encoder's output (integral ones become ints); integers beyond 2**53, keys outside the BMP
and what is not JSON (which orjson would write: enums, UUIDs, NaN as null) go through
`rfc8785`, which refuses the first and the last. `tests/chronicle/test_canonical_oracle.py`
holds both paths to `rfc8785`'s bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from base64 import b32encode
from typing import Any

import orjson

CODEC_RAW = 0x55
CODEC_JSON = 0x0200
_SHA2_256 = b"\x12\x20"
_INT_LIMIT = 2**53 - 1
_PREFIX_JSON = b"\x01\x80\x04" + _SHA2_256  # varint(1) varint(0x0200) multihash header
_PREFIX_RAW = b"\x01\x55" + _SHA2_256
_dumps = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode
# Types orjson would write in its own way (subclasses, datetimes, dataclasses) reach
# `_refuse` instead, and integers beyond 2**53 raise: both leave the fast path.
_SORTED = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_STRICT_INTEGER
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
_orjson_dumps = orjson.dumps
_FLAT_TYPES = frozenset((str, int, bool, type(None)))
_FLAT_TYPES_WITH_FLOAT = _FLAT_TYPES | {float}


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


class _OffPath(Exception):
    """The value holds something only `rfc8785` writes right."""


def _fast_form(value: Any, numbers: list[str]) -> Any:
    """`value` made ready for `json.dumps(sort_keys=True)` to write its RFC 8785 form.

    The same object comes back when nothing needs changing (the common case: no copy).
    A float that `repr` writes differently from ECMAScript becomes an int when it is
    integral and exact, else a placeholder string indexing `numbers`, which holds its
    ECMAScript form. Raises _OffPath for keys outside the BMP, integers beyond 2**53 and
    anything that is not JSON."""
    kind = type(value)
    if kind is dict:
        return _fast_object(value, numbers)
    if kind is list or kind is tuple:
        return _fast_array(value, numbers)
    return _fast_item(value, kind, numbers)


# The walk is most of a large event's cost, so the containers test their scalar members
# in line (a call per string or number would double it); `_fast_item` is the same test.
# One loop shared by both containers (over items() or enumerate()) measured 5-40 % slower.


def _fast_object(value: dict[str, Any], numbers: list[str]) -> dict[str, Any]:
    try:
        keys = "".join(value)
    except TypeError:  # a key that is not a string
        raise _OffPath from None
    if not keys.isascii() and max(keys) > "\uffff":
        raise _OffPath
    changed: dict[str, Any] | None = None
    ready: Any
    for key, item in value.items():
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -_INT_LIMIT <= item <= _INT_LIMIT:
                continue
            raise _OffPath
        if kind is float:
            if (1e-4 <= item < 1e16 or -1e16 < item <= -1e-4) and item % 1.0:
                continue
            ready = _float_form(item, numbers)
        elif kind is dict:
            ready = _fast_object(item, numbers)
        elif kind is list or kind is tuple:
            ready = _fast_array(item, numbers)
        else:
            raise _OffPath
        if ready is not item:
            if changed is None:
                changed = dict(value)
            changed[key] = ready
    return value if changed is None else changed


def _fast_array(value: list[Any] | tuple[Any, ...], numbers: list[str]) -> Any:
    items: list[Any] | None = None
    ready: Any
    for index, item in enumerate(value):
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -_INT_LIMIT <= item <= _INT_LIMIT:
                continue
            raise _OffPath
        if kind is float:
            if (1e-4 <= item < 1e16 or -1e16 < item <= -1e-4) and item % 1.0:
                continue
            ready = _float_form(item, numbers)
        elif kind is dict:
            ready = _fast_object(item, numbers)
        elif kind is list or kind is tuple:
            ready = _fast_array(item, numbers)
        else:
            raise _OffPath
        if ready is not item:
            if items is None:
                items = list(value)
            items[index] = ready
    return value if items is None else items


def _fast_item(value: Any, kind: type, numbers: list[str]) -> Any:
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if -_INT_LIMIT <= value <= _INT_LIMIT:
            return value
        raise _OffPath
    if kind is float:
        if (1e-4 <= value < 1e16 or -1e16 < value <= -1e-4) and value % 1.0:
            return value
        return _float_form(value, numbers)
    raise _OffPath


def _float_form(value: float, numbers: list[str]) -> int | str:
    if value != value or value in (_INF, -_INF):
        raise _OffPath
    if value.is_integer() and abs(value) <= _INT_LIMIT:
        return int(value)  # exact, and what ECMAScript writes for it
    numbers.append(ecmascript_number(value))
    return f"\x00{len(numbers) - 1}\x00"


_INF = float("inf")
_PLACEHOLDER = re.compile(r'"\\u0000(\d+)\\u0000"')
_PLACEHOLDER_BYTES = re.compile(rb'"\\u0000(\d+)\\u0000"')


def ecmascript_number(value: float) -> str:
    """ECMAScript's Number::toString of a finite float (RFC 8785 section 3.2.2.3): the
    shortest round-trip digits, which `repr` also finds, laid out by ECMAScript's rules."""
    if value == 0:
        return "0"
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    if exponent[:1] == "-" and exponent not in ("-05", "-06"):
        # Below 1e-6 both write the same digits in exponent form; Python pads the exponent.
        return f"{mantissa}e-{exponent[1:].lstrip('0')}"
    mantissa = mantissa.removeprefix("-")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(whole + fraction) - len(digits))
    digits = digits.rstrip("0")
    sign = "-" if value < 0 else ""
    k, n = len(digits), point
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = f"{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return sign + digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + e


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) canonical UTF-8 bytes of a JSON value; ValueError if it is not JSON."""
    numbers: list[str] = []
    try:
        ready = _fast_form(value, numbers)
    except _OffPath:
        return _rfc8785(value)
    try:
        encoded = _orjson_dumps(ready, default=_refuse, option=_SORTED)
    except TypeError:  # a lone surrogate, or nesting past orjson's limit
        return _canonical_by_json_module(value, ready, numbers)
    if numbers:
        if encoded.count(b"\\u0000") != 2 * len(numbers):  # a NUL of the data's own
            return _rfc8785(value)
        encoded = _PLACEHOLDER_BYTES.sub(
            lambda match: numbers[int(match.group(1))].encode("ascii"), encoded
        )
    return encoded


def _canonical_by_json_module(value: Any, ready: Any, numbers: list[str]) -> bytes:
    """What orjson refuses on the fast path: the standard library's encoder, which writes
    deep nesting, and a lone surrogate that UTF-8 then refuses (UnicodeEncodeError)."""
    text = _dumps(ready)
    if numbers:
        if text.count("\\u0000") != 2 * len(numbers):
            return _rfc8785(value)
        text = _PLACEHOLDER.sub(lambda match: numbers[int(match.group(1))], text)
    return text.encode("utf-8")


def _rfc8785(value: Any) -> bytes:
    import rfc8785  # only values off the fast path need it: kept out of start-up

    try:
        return bytes(rfc8785.dumps(value))
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"not canonicalisable as JSON: {exc}") from exc
    except (TypeError, AttributeError) as exc:
        raise ValueError(f"not a JSON value: {type(value).__name__}") from exc


_ALPHABET = b"abcdefghijklmnopqrstuvwxyz234567"
_TO_ALPHABET = bytes.maketrans(bytes(range(32)), _ALPHABET)


def _spreading_steps() -> list[tuple[int, int, int]]:
    """(low mask, high mask, shift) that move each half of every lane into a lane of half
    the width: 320 bits in one lane of 512 become 64 groups of 5 bits, one per byte."""
    steps = []
    lane, width, lanes = 512, 320, 1
    while width > 5:
        half, narrower = width // 2, lane // 2
        low = sum(((1 << half) - 1) << (index * lane) for index in range(lanes))
        steps.append((low, low << half, narrower - half))
        lane, width, lanes = narrower, half, lanes * 2
    return steps


_SPREADING = _spreading_steps()


def _b32(data: bytes) -> str:
    """Base32 (RFC 4648, lower case, no padding) of a 32-byte digest.

    The digest's 256 bits, at the top of 320 (64 groups of 5), are spread so that every
    group has a byte of its own (six shift-and-mask steps on one integer), and the bytes
    are translated to the alphabet: a few big-integer operations, no loop per group."""
    n = int.from_bytes(data, "big") << 64
    for low, high, shift in _SPREADING:
        n = (n & low) | ((n & high) << shift)
    return n.to_bytes(64, "big")[:52].translate(_TO_ALPHABET).decode("ascii")


_JSON_HEAD = "b" + b32encode(_PREFIX_JSON).decode("ascii").lower()  # 5 bytes: whole groups


def canonical_flat(payload: dict[str, Any]) -> bytes:
    """`canonical_json` for a flat object of scalars with ASCII keys (Chronicle records;
    a member may itself be such an object of strings, as a record's `sender`), without the
    walk: a look at the values' types (and at the floats, when there are any) decides that
    orjson's sorted bytes are RFC 8785's. Anything else goes to `canonical_json`."""
    values = payload.values()
    kinds = set(map(type, values))
    keys = "".join(payload)
    if dict in kinds:
        kinds.discard(dict)
        for value in values:
            if type(value) is dict:
                if not set(map(type, value.values())) <= _FLAT_TYPES:
                    return canonical_json(payload)
                keys += "".join(value)
    if not kinds <= _FLAT_TYPES:
        if not kinds <= _FLAT_TYPES_WITH_FLOAT:
            return canonical_json(payload)
        for value in values:
            if type(value) is float and not (
                (1e-4 <= value < 1e16 or -1e16 < value <= -1e-4) and value % 1.0
            ):
                return canonical_json(payload)
    try:
        if not keys.isascii():
            return canonical_json(payload)
        return _orjson_dumps(payload, option=_SORTED)
    except TypeError:  # a key that is not a string, an integer past 2**53, a lone surrogate
        return canonical_json(payload)


_sha256 = hashlib.sha256


def _encode(prefix: bytes, data: bytes) -> str:
    digest = _sha256(data).digest()
    return "b" + b32encode(prefix + digest).decode("ascii").rstrip("=").lower()


def cid_of_canonical(canonical: bytes) -> str:
    """CID of bytes that are already canonical JSON."""
    return _JSON_HEAD + _b32(_sha256(canonical).digest())


def cid_of(value: Any) -> str:
    """CIDv1 (codec json, sha2-256, base32 lower) of a JSON value."""
    return _JSON_HEAD + _b32(_sha256(canonical_json(value)).digest())


def cid_of_bytes(data: bytes) -> str:
    """CIDv1 (codec raw, sha2-256, base32 lower) of bytes."""
    return _encode(_PREFIX_RAW, data)


def snapshot(value: Any) -> bytes | None:
    """Sorted compact JSON bytes of `value` (orjson's, not canonical), cheap beside
    `content_cid`: two values with equal snapshots have the same content, and so the same
    CID. None when there is no such guarantee: what orjson refuses, and any `null` (orjson
    writes NaN and infinities as `null` too)."""
    try:
        taken = _orjson_dumps(value, default=_refuse, option=_SORTED)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return None if b"null" in taken else taken


def content_cid(value: Any) -> str:
    """CID of an event's or a result's content, whatever JSON it is.

    Bytes get the raw codec. JSON values get the json codec over their RFC 8785 form;
    valid JSON that RFC 8785 cannot represent (integers beyond 2**53) gets the raw codec
    over its sorted, compact JSON text, so such data is still addressed, not refused.
    ValueError only for what is not JSON at all (NaN, objects).
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return cid_of_bytes(bytes(value))
    try:
        return cid_of(value)
    except ValueError:
        try:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a JSON value: {exc}") from None
        return cid_of_bytes(text.encode("utf-8"))
