"""What `govfn chronicle` gives auditors: static tlog-tiles copies (`tiles --out`),
tlog-proof files (`proof --format tlog-proof`) and the witness quorum of `verify`.

`tiles --out DIR` writes each log with a signed checkpoint to `DIR/<log>/` (`default` for
a SQLite file, the log's id on PostgreSQL) exactly as the management API serves it,
byte for byte: `checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]` (raw,
uncompressed). Tiles and bundles are immutable, so a run writes only those missing
(each through a temporary file renamed into place) and then the checkpoint: any web
server or object store serves the folder as the log's prefix.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import click

from govfn.chronicle.tiles import (
    TileLog,
    checkpointed_sizes,
    log_path_name,
    published,
    read_tile,
    tile_paths,
)

if TYPE_CHECKING:
    from govfn.chronicle.chronicle import Chronicle

_Command = TypeVar("_Command", bound=Callable[..., object])

proof_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "tlog-proof"]),
    default="json",
    show_default=True,
    help="json: RFC 6962 in hex; tlog-proof: a c2sp.org/tlog-proof@v1 file against the "
    "log's latest signed checkpoint, with its cosignatures (checked offline).",
)

tiles_out_option = click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write each signed log into, as DIR/<log>/ (tlog-tiles layout).",
)


def witness_options(command: _Command) -> _Command:
    """`verify --witness VKEY... --quorum N`."""
    command = click.option(
        "--quorum",
        type=click.IntRange(min=1),
        default=None,
        help="How many of the --witness keys must have cosigned (default: all).",
    )(command)
    return click.option(
        "--witness",
        "witnesses",
        multiple=True,
        metavar="VKEY",
        help="A witness's verifier key (tlog-cosignature or signed-note form), or a file "
        "holding it; repeatable. Each checkpoint (default: the latest stored one of each "
        "log) must carry --quorum valid cosignatures.",
    )(command)


class Written(NamedTuple):
    log: str
    size: int
    written: int
    kept: int


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_tiles(logs: Sequence[tuple[str | None, TileLog]], out: Path) -> list[Written]:
    """Write every published tile, bundle and checkpoint of `logs` under `out`."""
    done = []
    for name, log in logs:
        checkpoints = published(log)
        if checkpoints is None:
            continue
        folder = out / log_path_name(name)
        written = kept = 0
        for request in tile_paths(checkpoints.size, checkpointed_sizes(log)):
            target = folder / request.path()
            if target.exists():
                kept += 1
                continue
            data = read_tile(log, request, checkpoints)
            assert data is not None  # tile_paths lists only what the log publishes
            _write_atomically(target, data)
            written += 1
        _write_atomically(folder / "checkpoint", checkpoints.note.encode("utf-8"))
        done.append(Written(log_path_name(name), checkpoints.size, written, kept))
    return done


def tiles_command(ledger: Chronicle, out: Path) -> None:
    written = write_tiles(ledger.audited_logs(), out)
    if not written:
        raise click.ClickException(
            "no log has a signed checkpoint: sign one first (`govfn chronicle checkpoint --key`)"
        )
    for item in written:
        click.echo(
            f"log {item.log}: tree size {item.size}, {item.written} files written, "
            f"{item.kept} already there -> {out / item.log}/"
        )


def tlog_proof_command(ledger: Chronicle, cid: str) -> None:
    from govfn.chronicle.proofs import ProofError, record_proof

    try:
        text = record_proof(ledger, cid).text()
    except KeyError:
        raise click.ClickException(f"no record {cid}") from None
    except ProofError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(text, nl=False)  # the file ends with the note's last signature line


def check_witnesses(
    logs: Sequence[tuple[str | None, TileLog]],
    texts: Sequence[str],
    vkeys: Sequence[str],
    quorum: int | None,
) -> str:
    """`check_quorum` of the notes given, or else of the latest stored note of each log."""
    latest = [published(log) for _, log in logs]
    return check_quorum(texts or [p.note for p in latest if p is not None], vkeys, quorum)


def check_quorum(texts: Sequence[str], vkeys: Sequence[str], quorum: int | None) -> str:
    """Check that each note carries valid cosignatures by at least `quorum` of the witness
    keys (default: all of them); the message to print, or ClickException."""
    from govfn.chronicle.signing.note import NoteError
    from govfn.chronicle.signing.witnesses import Cosigner, cosigned_by

    cosigners = []
    for vkey in vkeys:
        text = Path(vkey).read_text(encoding="utf-8") if os.path.isfile(vkey) else vkey
        try:
            cosigners.append(Cosigner.from_key(text))
        except NoteError as exc:
            raise click.BadParameter(str(exc), param_hint="--witness") from None
    needed = len(cosigners) if quorum is None else quorum
    if not 1 <= needed <= len(cosigners):
        raise click.BadParameter(
            f"{needed} of {len(cosigners)} witnesses cannot be met", param_hint="--quorum"
        )
    if not texts:
        raise click.ClickException("no signed checkpoint to check the witnesses' cosignatures of")
    for number, text in enumerate(texts, start=1):
        try:
            names = cosigned_by(text, cosigners)
        except NoteError as exc:
            raise click.ClickException(f"checkpoint {number}: {exc}") from None
        if len(names) < needed:
            got = ", ".join(names) or "none"
            raise click.ClickException(
                f"checkpoint {number} carries {len(names)} valid cosignature(s) of the "
                f"{len(cosigners)} witnesses given ({got}); {needed} needed"
            )
    return f"each checkpoint is cosigned by at least {needed} of {len(cosigners)} witnesses"
