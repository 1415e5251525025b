"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, in the key formats of Go's
golang.org/x/mod/sumdb/note:

    verifier key   <name>+<hex key ID>+base64(0x01 || 32-byte public key)
    signer key     PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || 32-byte seed)
    key ID         first 4 bytes, big-endian, of SHA-256(name || 0x0A || 0x01 || public key)
    note           text ending in a newline, a blank line, then one line per signature:
                   U+2014 " " name " " base64(key ID || Ed25519 signature of the text)

Ed25519 comes from the `cryptography` package, imported only when a key is used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "
MAX_SIGNATURES = 100
_SPACE = re.compile(r"\s")


class NoteError(ValueError):
    """A key or a note is malformed, or a note's signature does not verify."""


def valid_name(name: str) -> bool:
    """Key names are non-empty, with no Unicode space and no '+'."""
    return bool(name) and "+" not in name and not _SPACE.search(name)


def key_id(name: str, public_key: bytes) -> int:
    """The signed-note key ID of an Ed25519 key (the spec's recommended rule)."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519]) + public_key)
    return int(struct.unpack(">I", digest.digest()[:4])[0])


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not base64") from None


def _parse_key(name: str, hex_id: str, key64: str, what: str) -> tuple[int, bytes]:
    if not valid_name(name):
        raise NoteError(f"{what}: key name {name!r} is empty or has a space or '+'")
    if len(hex_id) != 8 or not re.fullmatch(r"[0-9a-fA-F]{8}", hex_id):
        raise NoteError(f"{what}: key ID {hex_id!r} is not 8 hex digits")
    key = _b64decode(key64, f"{what}: key")
    if len(key) != 33 or key[0] != ED25519:
        raise NoteError(f"{what}: not an Ed25519 key (type byte 0x01 and 32 bytes)")
    return int(hex_id, 16), key[1:]


class Verifier(NamedTuple):
    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def from_key(cls, vkey: str) -> Verifier:
        """Read `name+hex+base64` (as sumdb/note.NewVerifier does)."""
        parts = vkey.strip().split("+", 2)  # base64 may hold "+"
        if len(parts) != 3:
            raise NoteError("verifier key must be <name>+<key ID>+<base64 key>")
        expected, public = _parse_key(parts[0], parts[1], parts[2], "verifier key")
        if key_id(parts[0], public) != expected:
            raise NoteError("verifier key: key ID does not match the name and key")
        return cls(parts[0], expected, public)

    def encode(self) -> str:
        key64 = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{key64}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            _public(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer(NamedTuple):
    name: str
    key_id: int
    seed: bytes

    @classmethod
    def from_key(cls, skey: str) -> Signer:
        """Read `PRIVATE+KEY+name+hex+base64` (as sumdb/note.NewSigner does)."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("signer key must be PRIVATE+KEY+<name>+<key ID>+<base64 seed>")
        expected, seed = _parse_key(parts[2], parts[3], parts[4], "signer key")
        signer = cls(parts[2], expected, seed)
        if key_id(signer.name, signer.public_key()) != expected:
            raise NoteError("signer key: key ID does not match the name and key")
        return signer

    @classmethod
    def generate(cls, name: str) -> Signer:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        if not valid_name(name):
            raise NoteError(f"key name {name!r} is empty or has a space or '+'")
        seed = Ed25519PrivateKey.generate().private_bytes(
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()
        )
        signer = cls(name, 0, seed)
        return signer._replace(key_id=key_id(name, signer.public_key()))

    def encode(self) -> str:
        key64 = base64.b64encode(bytes([ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{key64}"

    def public_key(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return _private(self.seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.public_key())

    def sign(self, message: bytes) -> bytes:
        return _private(self.seed).sign(message)


def _private(seed: bytes) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed)


def _public(key: bytes) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(key)


class Signature(NamedTuple):
    name: str
    key_id: int
    signature: bytes  # without the 4-byte key ID


class Note(NamedTuple):
    text: str
    signatures: tuple[Signature, ...]


def _check_characters(text: str) -> None:
    for char in text:
        if char < " " and char != "\n":
            raise NoteError(f"note contains control character U+{ord(char):04X}")


def sign(text: str, *signers: Signer) -> str:
    """The signed note of `text` (which must end in a newline)."""
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    _check_characters(text)
    lines = []
    for signer in signers:
        blob = struct.pack(">I", signer.key_id) + signer.sign(text.encode("utf-8"))
        lines.append(f"{SIGNATURE_PREFIX}{signer.name} {base64.b64encode(blob).decode()}\n")
    return text + "\n" + "".join(lines)


def parse(message: str) -> Note:
    """Split a note into its text and signatures, checking only the format."""
    _check_characters(message)
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("not a signed note: no blank line before the signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("not a signed note: no signature line after the blank line")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"malformed signature line {line[:60]!r}")
        name, _, sig64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
        blob = _b64decode(sig64, f"signature of {name!r}") if sig64 else b""
        if not valid_name(name) or len(blob) < 5:
            raise NoteError(f"malformed signature line {line[:60]!r}")
        signatures.append(Signature(name, struct.unpack(">I", blob[:4])[0], blob[4:]))
        if len(signatures) > MAX_SIGNATURES:
            raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(signatures))


def open_note(message: str, verifier: Verifier) -> Note:
    """Parse a note and verify its signature by `verifier`; signatures by other keys are
    ignored (the spec says so), but one that claims this key and fails rejects the note."""
    note = parse(message)
    verified = False
    for signature in note.signatures:
        if (signature.name, signature.key_id) != (verifier.name, verifier.key_id):
            continue
        if not verifier.verify(note.text.encode("utf-8"), signature.signature):
            raise NoteError(
                f"the signature by {verifier.name} ({verifier.key_id:08x}) does not verify: "
                "the note was altered or signed by another key"
            )
        verified = True
    if not verified:
        others = ", ".join(f"{s.name} ({s.key_id:08x})" for s in note.signatures)
        raise NoteError(
            f"note is not signed by {verifier.name} ({verifier.key_id:08x}); signed by {others}"
        )
    return note
