"""Witnesses (c2sp.org/tlog-witness) and their cosignatures (c2sp.org/tlog-cosignature).

A witness cosigns a checkpoint only after checking a consistency proof from the last
one it cosigned for that origin, so that a log cannot show two histories (a split view):

    POST <submission prefix>/add-checkpoint
        old <size>\\n  <base64 consistency-proof hash>\\n ...  \\n  <checkpoint note>
    200   cosignature lines ("— <name> base64(key ID || u64 timestamp || signature)")
    409   text/x.tlog.size: the size the witness last cosigned: prove again from it

An Ed25519 cosignature/v1 signs "cosignature/v1\\ntime <timestamp>\\n" + the checkpoint
text; its key ID is SHA-256(name || "\\n" || 0x04 || public key)[:4].

`GOVFN_CHRONICLE_WITNESSES` lists witnesses, comma-separated, as `<verifier key>
<submission prefix URL>`; the key is a tlog-cosignature vkey (type 0x04) or the Ed25519
signed-note form (type 0x01) of the same key: both name the same cosigner.
`cosigning.Cosigning` submits each checkpoint the pod signs, in the background.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

from govfn.chronicle.signing import note
from govfn.chronicle.signing.checkpoint import Checkpoint

COSIGNATURE_V1 = 0x04
TIMEOUT_S = 10.0
MAX_PROOF_LINES = 63
_SIZE_TYPE = "text/x.tlog.size"


class WitnessError(Exception):
    """A witness did not cosign (unreachable, or an answer the protocol does not allow)."""


def cosigner_key_id(name: str, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([COSIGNATURE_V1]) + public_key)
    return int(struct.unpack(">I", digest.digest()[:4])[0])


class Cosigner(NamedTuple):
    """An Ed25519 cosigner: its name, its cosignature/v1 key ID and public key."""

    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def from_key(cls, vkey: str) -> Cosigner:
        """`<name>+<hex key ID>+base64(0x04 || key)`, or the signed-note form with 0x01."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or not note.valid_name(parts[0]):
            raise note.NoteError(f"witness key {vkey.strip()[:80]!r} is not name+keyID+base64")
        name, hex_id, key64 = parts
        try:
            material = base64.b64decode(key64, validate=True)
            given = int(hex_id, 16) if len(hex_id) == 8 else -1
        except ValueError:
            raise note.NoteError(f"witness key of {name!r}: not hex and base64") from None
        if len(material) != 33 or material[0] not in (COSIGNATURE_V1, note.ED25519):
            raise note.NoteError(
                f"witness key of {name!r} is not an Ed25519 key (type 0x04 or 0x01)"
            )
        public = material[1:]
        rule = cosigner_key_id if material[0] == COSIGNATURE_V1 else note.key_id
        if rule(name, public) != given:
            raise note.NoteError(f"witness key of {name!r}: key ID does not match the key")
        return cls(name, cosigner_key_id(name, public), public)

    def encode(self) -> str:
        material = base64.b64encode(bytes([COSIGNATURE_V1]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{material}"

    def verifies(self, text: str, signature: note.Signature) -> bool:
        """Whether a signature line of the note of `text` is this cosigner's and valid."""
        if (signature.name, signature.key_id) != (self.name, self.key_id):
            return False
        if len(signature.signature) != 8 + 64:
            return False
        (timestamp,) = struct.unpack(">Q", signature.signature[:8])
        if timestamp >= 1 << 63:
            return False
        message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
        verifier = note.Verifier(self.name, self.key_id, self.public_key)
        return verifier.verify(message, signature.signature[8:])


class Witness(NamedTuple):
    cosigner: Cosigner
    url: str  # the submission prefix, without a trailing slash

    @property
    def name(self) -> str:
        return self.cosigner.name


def parse_witnesses(text: str, variable: str = "GOVFN_CHRONICLE_WITNESSES") -> list[Witness]:
    """`<vkey> <submission prefix URL>`, comma-separated (ValueError names the entry)."""
    witnesses = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        fields = entry.split()
        if len(fields) != 2 or not fields[1].startswith(("http://", "https://")):
            raise ValueError(f"{variable}: {entry[:120]!r} is not '<verifier key> <http(s) URL>'")
        try:
            cosigner = Cosigner.from_key(fields[0])
        except note.NoteError as exc:
            raise ValueError(f"{variable}: {exc}") from None
        witnesses.append(Witness(cosigner, fields[1].rstrip("/")))
    names = [w.name for w in witnesses]
    if len(set(names)) != len(names):
        raise ValueError(f"{variable}: a witness is named twice ({', '.join(names)})")
    return witnesses


def signature_line(signature: note.Signature) -> str:
    blob = struct.pack(">I", signature.key_id) + signature.signature
    return f"{note.SIGNATURE_PREFIX}{signature.name} {base64.b64encode(blob).decode()}\n"


def cosigned_by(message: str, cosigners: Iterable[Cosigner]) -> list[str]:
    """The names of the cosigners whose valid cosignature the note carries."""
    parsed = note.parse(message)
    return [
        cosigner.name
        for cosigner in cosigners
        if any(cosigner.verifies(parsed.text, s) for s in parsed.signatures)
    ]


def good_cosignatures(message: str, lines: str, cosigner: Cosigner) -> list[str]:
    """The lines of a witness's answer that are valid cosignatures of `message` by
    `cosigner`; every other line is dropped (one bad line would make a verifier reject
    the whole note)."""
    text = note.parse(message).text
    good = []
    for line in lines.splitlines(keepends=True):
        if not line.endswith("\n"):
            continue
        try:
            (signature,) = note.parse(text + "\n" + line).signatures
        except note.NoteError:
            continue
        if cosigner.verifies(text, signature):
            good.append(signature_line(signature))
    return good


def with_cosignatures(message: str, lines: Sequence[str]) -> str:
    """The note with these signature lines added after its own (each once)."""
    present = set(message.split("\n\n")[-1].splitlines(keepends=True))
    return message + "".join(line for line in dict.fromkeys(lines) if line not in present)


class ProvingLog(Protocol):
    def consistency(self, old_size: int, new_size: int | None = None) -> _Proof: ...


class _Proof(Protocol):
    @property
    def proof(self) -> list[str]: ...


class Conflict(NamedTuple):
    size: int  # the witness's latest cosigned size for the origin


def add_checkpoint(
    witness: Witness, log: ProvingLog, message: str, old_size: int, *, timeout_s: float = TIMEOUT_S
) -> str | Conflict:
    """POST one add-checkpoint request: the cosignature lines, or the witness's size."""
    checkpoint = Checkpoint.parse(note.parse(message).text)
    hashes = log.consistency(old_size, checkpoint.tree_size).proof if old_size else []
    if len(hashes) > MAX_PROOF_LINES:
        raise WitnessError(f"a consistency proof of {len(hashes)} hashes is over 63")
    proof = "".join(base64.b64encode(bytes.fromhex(h)).decode() + "\n" for h in hashes)
    body = f"old {old_size}\n{proof}\n{message}".encode()
    request = urllib.request.Request(
        f"{witness.url}/add-checkpoint",
        data=body,
        method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return str(answer.read(64 * 1024).decode("utf-8"))
    except urllib.error.HTTPError as exc:
        text = exc.read(1024).decode("utf-8", "replace")
        kind = (exc.headers.get("Content-Type") or "").split(";")[0].strip()
        if exc.code == 409 and kind == _SIZE_TYPE and text.strip().isdigit():
            return Conflict(int(text.strip()))
        raise WitnessError(
            f"witness {witness.name} answered {exc.code}: {text.strip()[:200]}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WitnessError(f"witness {witness.name} at {witness.url}: {exc}") from None


def cosign(
    witness: Witness,
    log: ProvingLog,
    message: str,
    known_size: int = 0,
    *,
    timeout_s: float = TIMEOUT_S,
) -> tuple[list[str], int]:
    """Submit a signed checkpoint, proving consistency from the size the witness last
    cosigned (`known_size`, else what its 409 says); returns the valid cosignature lines
    and the size the witness now holds."""
    size = Checkpoint.parse(note.parse(message).text).tree_size
    old = known_size if known_size <= size else 0
    for _ in range(3):  # a guess, the witness's own size, once more if it moved meanwhile
        answer = add_checkpoint(witness, log, message, old, timeout_s=timeout_s)
        if not isinstance(answer, Conflict):
            good = good_cosignatures(message, answer, witness.cosigner)
            if not good:
                raise WitnessError(f"witness {witness.name} sent no valid cosignature")
            return good, size
        if answer.size > size:
            raise WitnessError(
                f"witness {witness.name} has cosigned size {answer.size} of this log, larger "
                f"than {size}: it saw a checkpoint this log did not sign (or a newer one)"
            )
        old = answer.size
    raise WitnessError(f"witness {witness.name} kept answering 409")
