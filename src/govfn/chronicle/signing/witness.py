"""Signing a log's tree head as a C2SP checkpoint, and checking today's log against
checkpoints signed earlier (held by a witness outside the pod).

Backend-neutral: a `CheckpointLog` is anything with the few methods below (a
`log.Log`: the one log of a SQLite file, or one log of the PostgreSQL ledger, whose
checkpoints carry the origin `<origin>/<log id>`). A rewritten history cannot be consistent with
a checkpoint signed before the rewrite, so `check_checkpoints` names the first
checkpointed tree size that today's log no longer extends.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol

from govfn.chronicle import merkle
from govfn.chronicle.signing.checkpoint import Checkpoint, CheckpointError
from govfn.chronicle.signing.note import NoteError, Signer, Verifier, open_note


class ConsistencyLike(Protocol):
    @property
    def new_size(self) -> int: ...
    @property
    def old_root(self) -> str: ...
    @property
    def new_root(self) -> str: ...
    @property
    def proof(self) -> list[str]: ...
    def to_dict(self) -> dict[str, object]: ...


class CheckpointLog(Protocol):
    def head(self) -> tuple[int, str]: ...
    def consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyLike: ...
    def store_signed_checkpoint(self, tree_size: int, root: bytes, note: str) -> bool:
        """Store the note beside the log and queue it for the sink, in one transaction."""

    def signed_checkpoints(self) -> list[str]: ...


def log_origin(origin: str, log_name: str | None) -> str:
    """The origin line of one log's checkpoints: `origin` for the single log of SQLite,
    `<origin>/<log id>` for a log of PostgreSQL."""
    return origin if log_name is None else f"{origin}/{log_name}"


def sign_checkpoint(log: CheckpointLog, signer: Signer, origin: str) -> tuple[Checkpoint, str]:
    """Sign the log's current tree head and store the note beside the log (queued for the
    sink when the log has an outbox)."""
    size, root = log.head()
    checkpoint = Checkpoint(origin, size, bytes.fromhex(root))
    note = checkpoint.sign(signer)
    log.store_signed_checkpoint(size, checkpoint.root, note)
    return checkpoint, note


class CheckResult(NamedTuple):
    ok: bool
    message: str
    tree_size: int | None = None  # of the checkpoint that failed


def check_checkpoints(
    log: CheckpointLog, notes: Iterable[str], verifier: Verifier, origin: str | None = None
) -> CheckResult:
    """Check each note's signature by `verifier` and that today's log extends the tree it
    signs (an RFC 6962 consistency proof, checked with `merkle` alone). On failure the
    message names the smallest checkpointed tree size that no longer matches."""
    checkpoints: list[Checkpoint] = []
    for number, text in enumerate(notes, start=1):
        try:
            checkpoint = Checkpoint.parse(open_note(text, verifier).text)
        except (NoteError, CheckpointError) as exc:
            return CheckResult(False, f"checkpoint {number}: {exc}")
        if origin is not None and checkpoint.origin != origin:
            return CheckResult(
                False,
                f"checkpoint {number} is for log {checkpoint.origin!r}, not {origin!r}",
                checkpoint.tree_size,
            )
        checkpoints.append(checkpoint)
    if not checkpoints:
        return CheckResult(False, "no signed checkpoint to check the log against")
    size, _ = log.head()
    matched = 0
    for checkpoint in sorted(checkpoints, key=lambda c: c.tree_size):
        problem = _extends(log, size, checkpoint)
        if problem:
            since = f"; it still matches tree size {matched}" if matched else ""
            return CheckResult(
                False,
                f"tree size {checkpoint.tree_size} no longer matches the signed checkpoint "
                f"of {checkpoint.origin}: {problem}{since}",
                checkpoint.tree_size,
            )
        matched = checkpoint.tree_size
    sizes = ", ".join(str(c.tree_size) for c in sorted(checkpoints, key=lambda c: c.tree_size))
    return CheckResult(
        True, f"ok: the log of {size} records extends the signed checkpoint(s) at {sizes}"
    )


def _extends(log: CheckpointLog, size: int, checkpoint: Checkpoint) -> str | None:
    if checkpoint.tree_size > size:
        return f"the log has only {size} records (records were removed)"
    proof = log.consistency(checkpoint.tree_size, size)
    ok = merkle.verify_consistency(
        checkpoint.tree_size,
        size,
        checkpoint.root,
        bytes.fromhex(proof.new_root),
        [bytes.fromhex(node) for node in proof.proof],
    )
    if ok:
        return None
    return (
        f"its root is {checkpoint.root.hex()} but the log's first {checkpoint.tree_size} "
        f"records hash to {proof.old_root} (history was rewritten)"
    )
