"""An independent reading of C2SP signed-note (c2sp.org/signed-note) with Ed25519,
written from the spec for the tests: key IDs, verifier keys, note parsing and
signature verification (RFC 8032 section 6's reference verifier, in pure Python).
Nothing here imports govfn."""

from __future__ import annotations

import base64
import hashlib

# -- Ed25519 verification, after RFC 8032 section 6 --------------------------------------
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

Point = tuple[int, int, int, int]


def _add(a: Point, b: Point) -> Point:
    x = (a[1] - a[0]) * (b[1] - b[0]) % _P
    y = (a[1] + a[0]) * (b[1] + b[0]) % _P
    c = 2 * a[3] * b[3] * _D % _P
    d = 2 * a[2] * b[2] % _P
    e, f, g, h = y - x, d - c, d + c, y + x
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s: int, point: Point) -> Point:
    result: Point = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            result = _add(result, point)
        point = _add(point, point)
        s >>= 1
    return result


def _equal(a: Point, b: Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if (x & 1) != sign else x


def _decompress(data: bytes) -> Point | None:
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
assert _GX is not None
_G: Point = (_GX, _GY, 1, _GX * _GY % _P)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _decompress(public), _decompress(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little")
    return _equal(_mul(s, _G), _add(r, _mul(h % _L, a)))


# -- signed-note ---------------------------------------------------------------------------


def key_id(name: str, public: bytes) -> int:
    """key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]"""
    digest = hashlib.sha256(name.encode() + b"\x0a" + b"\x01" + public).digest()
    return int.from_bytes(digest[:4], "big")


def parse_vkey(vkey: str) -> tuple[str, int, bytes]:
    """<key name>+hex(32-bit key ID)+base64(signature type || public key)"""
    name, hex_id, key64 = vkey.split("+", 2)
    material = base64.b64decode(key64, validate=True)
    assert name and " " not in name and len(hex_id) == 8 and hex_id == hex_id.lower()
    assert material[0] == 0x01 and len(material) == 33, "not an Ed25519 verifier key"
    assert key_id(name, material[1:]) == int(hex_id, 16), "key ID does not follow the rule"
    return name, int(hex_id, 16), material[1:]


def verify_note(message: bytes, vkey: str) -> str:
    """The note text, if `message` is a signed note carrying a valid signature by `vkey`;
    AssertionError otherwise."""
    name, expected_id, public = parse_vkey(vkey)
    decoded = message.decode("utf-8")
    assert all(c == "\n" or c >= " " for c in decoded), "control character in the note"
    split = message.rindex(b"\n\n")  # the last empty line separates the signatures
    text, block = message[: split + 1], message[split + 2 :]
    assert block.endswith(b"\n")
    verified = False
    for line in block[:-1].split(b"\n"):
        assert line.startswith("\u2014 ".encode()), f"bad signature line {line!r}"
        signer, sig64 = line[len("\u2014 ".encode()) :].decode().split(" ")
        blob = base64.b64decode(sig64, validate=True)
        if signer == name and int.from_bytes(blob[:4], "big") == expected_id:
            assert ed25519_verify(public, text, blob[4:]), "signature does not verify"
            verified = True
    assert verified, "no signature by the verifier key"
    return text.decode()
