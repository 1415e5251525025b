"""C2SP transparency-log checkpoints (c2sp.org/tlog-checkpoint): a signed note whose text is

    <origin>
    <tree size in decimal>
    <base64 RFC 6962 root hash>
    [extension lines]

The origin names the log; the key that signs it should carry the same name.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import NamedTuple

from govfn.chronicle.signing import note

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(ValueError):
    """A checkpoint's text is malformed."""


class Checkpoint(NamedTuple):
    origin: str
    tree_size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError("checkpoint origin must be one non-empty line")
        if any(not line or "\n" in line for line in self.extensions):
            raise CheckpointError("checkpoint extension lines must be non-empty lines")
        root64 = base64.b64encode(self.root).decode()
        lines = [self.origin, str(self.tree_size), root64, *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise CheckpointError("checkpoint needs origin, tree size and root hash lines")
        origin, size, root64, *extensions = lines
        if not _DECIMAL.fullmatch(size):
            raise CheckpointError(f"checkpoint tree size {size!r} is not a decimal number")
        try:
            root = base64.b64decode(root64, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointError("checkpoint root hash is not base64") from None
        if len(root) != 32:
            raise CheckpointError("checkpoint root hash is not 32 bytes")
        return cls(origin, int(size), root, tuple(extensions))

    def sign(self, signer: note.Signer) -> str:
        return note.sign(self.text(), signer)


def open_checkpoint(message: str, verifier: note.Verifier) -> Checkpoint:
    """Verify a checkpoint note's signature by `verifier` and read its text."""
    return Checkpoint.parse(note.open_note(message, verifier).text)
