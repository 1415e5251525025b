"""Signed checkpoint notes for `govfn chronicle verify | checkpoint | keygen`: reading them,
checking their format, finding a note's log (`<origin>/<log id>`), the verifier key, checking
a Chronicle's logs against them log by log, and writing a key pair."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from govfn.chronicle.log import Log
    from govfn.chronicle.signing.note import Verifier
    from govfn.chronicle.signing.witness import CheckpointLog


def verify_logs(
    named_logs: list[tuple[str | None, Log]],
    records: int,
    texts: list[str],
    verifier: Verifier,
    log_id: int | None,
) -> None:
    """Check signed checkpoints log by log (`named_logs`: every log, or the one --log
    names): the notes given, each against the log --log or its origin names, or else the
    notes stored beside each log."""
    from govfn.chronicle.signing.witness import check_checkpoints

    logs = dict(named_logs)
    by_log: dict[str | None, list[str]] = {}
    for number, text in enumerate(texts, start=1):
        named = log_of_note(text)
        if log_id is not None and named is not None and named != str(log_id):
            click.echo(
                f"FAILED: checkpoint {number} is for log {named}, not log {log_id}", err=True
            )
            sys.exit(1)
        named = str(log_id) if log_id is not None else named
        if named is None:
            raise click.UsageError(
                f"checkpoint {number}'s origin names no log (<origin>/<log id>): give --log"
            )
        if named not in logs:
            click.echo(
                f"FAILED: checkpoint {number} is for log {named}, not in the Chronicle", err=True
            )
            sys.exit(1)
        by_log.setdefault(named, []).append(text)
    if not texts:
        for name, log in logs.items():
            notes = stored_notes_by(log, verifier)
            if notes:
                by_log[name] = notes
    if not by_log:
        click.echo("FAILED: no signed checkpoint to check the logs against", err=True)
        sys.exit(1)
    lines = []
    for name, log in logs.items():
        if name not in by_log:
            lines.append(f"  log {name}: no checkpoint signed by {verifier.name}")
            continue
        result = check_checkpoints(log, by_log[name], verifier)
        if not result.ok:
            click.echo(f"FAILED: log {name}: {result.message}", err=True)
            sys.exit(1)
        lines.append(f"  log {name}: {result.message[4:]}")
    click.echo(f"ok: {records} records in {len(logs)} logs")
    for line in lines:
        click.echo(line)


def log_of_note(text: str) -> str | None:
    """The log id at the end of a checkpoint's origin (`<origin>/<log id>`), if any."""
    from govfn.chronicle.signing.note import parse

    origin = parse(text).text.split("\n", 1)[0]
    last = origin.rsplit("/", 1)[-1]
    return last if "/" in origin and last.isdigit() else None


def stored_notes_by(ledger: CheckpointLog, verifier: Verifier) -> list[str]:
    """The notes stored beside the log that claim a signature by `verifier` (others may
    be by a rotated-out key or a witness)."""
    from govfn.chronicle.signing.note import NoteError, parse

    claimed = []
    for text in ledger.signed_checkpoints():
        try:
            signatures = parse(text).signatures
        except NoteError:
            claimed.append(text)  # a damaged note is reported, not skipped
            continue
        if any((s.name, s.key_id) == (verifier.name, verifier.key_id) for s in signatures):
            claimed.append(text)
    return claimed


def verifier_from(vkey: str) -> Verifier:
    from govfn.chronicle.signing.note import NoteError, Verifier

    text = vkey
    if os.path.isfile(vkey):
        text = Path(vkey).read_text(encoding="utf-8")
    try:
        return Verifier.from_key(text)
    except NoteError as exc:
        raise click.BadParameter(str(exc), param_hint="--verifier") from None


def check_note_format(name: str, text: str) -> None:
    from govfn.chronicle.signing.checkpoint import Checkpoint, CheckpointError
    from govfn.chronicle.signing.note import NoteError, parse

    try:
        Checkpoint.parse(parse(text).text)
    except (NoteError, CheckpointError) as exc:
        raise click.BadParameter(f"{name!r}: {exc}", param_hint="--checkpoint") from None


def read_note(name: str) -> str:
    try:
        if name == "-":
            return sys.stdin.read()
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot read {name!r}: {exc}"
        raise click.BadParameter(message, param_hint="--checkpoint") from None


def write_key_pair(name: str, out_dir: Path) -> str:
    """Write NAME.key (the signer key, mode 0600) and NAME.pub (the verifier key) in
    `out_dir`, never over existing keys; returns what was written, for the operator."""
    from govfn.chronicle.signing.note import NoteError, Signer

    try:
        signer = Signer.generate(name)
    except NoteError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    stem = name.replace("/", "_")
    key_file, pub_file = out_dir / f"{stem}.key", out_dir / f"{stem}.pub"
    for existing in (key_file, pub_file):
        if existing.exists():
            raise click.UsageError(f"{str(existing)!r} exists; not overwriting a key")
    out_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(signer.encode() + "\n")
    pub_file.write_text(signer.verifier().encode() + "\n", encoding="utf-8")
    return f"signer key   {key_file}\nverifier key {pub_file}: {signer.verifier().encode()}"
