"""`govfn chronicle init | verify | show | proof | consistency | lineage | export |
checkpoint | keygen`, on either backend.

`--ledger` (default GOVFN_CHRONICLE) names a SQLite file or a PostgreSQL URI. A ledger that
cannot be reached is a one-line error naming where it was looked for (never a password).
A SQLite file is one log; PostgreSQL holds one log per writer, and signed checkpoints,
their verification and consistency proofs work per log there: `--log ID` names one, and
a log's checkpoints carry the origin `<origin>/<log id>`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from govfn.chronicle.backends import open_chronicle
from govfn.chronicle.store import LedgerError
from govfn.cli.checkpoint_notes import (
    check_note_format,
    read_note,
    stored_notes_by,
    verifier_from,
    verify_logs,
    write_key_pair,
)
from govfn.databases.postgres import is_uri
from govfn.idempotency import IdempotencyUnavailable
from govfn.settings import Settings, read_signer

if TYPE_CHECKING:
    from govfn.chronicle.chronicle import Chronicle
    from govfn.chronicle.log import Log


def _ledger(location: str | None) -> Chronicle:
    """The ledger `location` names, reachable and with its schema, else a one-line error
    (reading creates nothing: `init` does)."""
    settings = Settings.from_env()
    ledger = open_chronicle(location or settings.chronicle_location, sync=settings.chronicle_sync)
    ledger.require()
    return ledger


def _unnamed(logs: list[Log]) -> bool:
    """Whether the Chronicle is one log without a name (a SQLite file): its reports name
    no log."""
    return len(logs) == 1 and logs[0].log_id is None


def _logs(ledger: Chronicle, log_id: int | None) -> list[tuple[str | None, Log]]:
    """(name, log) of the log `--log` names, or of every log: the one log of a SQLite file
    (named None), each log of PostgreSQL by its id."""
    logs = ledger.logs()
    if log_id is not None and _unnamed(logs):
        raise click.UsageError(
            f"--log names one of several logs; the Chronicle {ledger.where} is one log"
        )
    named = [(None if log.log_id is None else str(log.log_id), log) for log in logs]
    if log_id is None:
        return named
    if not any(log.log_id == log_id for log in logs):
        known = ", ".join(str(name) for name, _ in named) or "none"
        raise click.UsageError(f"no log {log_id} in the Chronicle {ledger.where} (logs: {known})")
    return [(name, log) for name, log in named if log.log_id == log_id]


def _one_log(ledger: Chronicle, log_id: int | None) -> Log:
    logs = _logs(ledger, log_id)
    if len(logs) != 1:
        ids = ", ".join(str(name) for name, _ in logs) or "none"
        raise click.UsageError(f"the Chronicle holds {len(logs)} logs ({ids}): name one with --log")
    return logs[0][1]


log_option = click.option(
    "--log",
    "log_id",
    type=click.IntRange(min=1),
    default=None,
    metavar="ID",
    help="On PostgreSQL: the log (its id, as `verify` and `proof` print it).",
)


ledger_option = click.option(
    "--ledger",
    "path",
    default=None,
    metavar="FILE|URI",
    help="Ledger file or postgresql:// URI (default: GOVFN_CHRONICLE).",
)


class _ChronicleCommands(click.Group):
    """A ledger error (the database went away, say) is a one-line error, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_ChronicleCommands)
def chronicle() -> None:
    """Inspect and check the Chronicle ledger (a SQLite file or PostgreSQL)."""


@chronicle.command()
@ledger_option
def init(path: str | None) -> None:
    """Create the ledger and its schema (for serving roles that may not run DDL), and the
    idempotency store's tables when it lives in PostgreSQL (GOVFN_IDEMPOTENCY, or by
    default the ledger's database)."""
    settings = Settings.from_env()
    ledger = open_chronicle(path or settings.chronicle_location, sync=settings.chronicle_sync)
    try:
        click.echo(f"ok: {ledger.init()}")
    finally:
        ledger.close()
    store = settings.idempotency_target(path)
    if is_uri(store):
        from govfn.idempotency.postgres import PostgresIdempotencyStore

        idempotency = PostgresIdempotencyStore(store)
        try:
            idempotency.prepare()
        except IdempotencyUnavailable as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"ok: idempotency schema ready in {idempotency.where}")


@chronicle.command()
@ledger_option
@click.option(
    "--checkpoint",
    "notes",
    multiple=True,
    metavar="NOTE",
    help="A signed checkpoint note file ('-' for stdin) the log must extend; repeatable. "
    "Default with --verifier: the notes stored beside the log.",
)
@click.option(
    "--verifier",
    "vkey",
    default=None,
    metavar="VKEY",
    help="The verifier key (name+hash+base64), or a file holding it.",
)
@log_option
def verify(path: str | None, notes: tuple[str, ...], vkey: str | None, log_id: int | None) -> None:
    """Recompute every CID, the hash chain, the Merkle tree and the checkpoints; with
    --verifier, also check signed checkpoints and prove by RFC 6962 consistency proofs
    that today's log extends each of them (on PostgreSQL: each note's log, from --log or
    the note's origin `<origin>/<log id>`)."""
    ledger = _ledger(path)
    verifier = verifier_from(vkey) if vkey is not None else None
    if notes and verifier is None:
        raise click.UsageError("--checkpoint needs --verifier to check its signature")
    texts = [read_note(name) for name in notes]
    for name, text in zip(notes, texts, strict=True):
        check_note_format(name, text)
    report = ledger.verify()
    if not report.ok:
        click.echo(
            f"FAILED at record {report.bad_seq} ({report.bad_cid}): {report.problem}"
            if report.bad_seq is not None
            else f"FAILED: {report.problem}",
            err=True,
        )
        sys.exit(1)
    if verifier is None and any(head.log is not None for head in report.heads):
        click.echo(f"ok: {report.records} records in {len(report.heads)} logs")
        for head in report.heads:
            click.echo(f"  log {head.log}: {head.tree_size} records, root {head.root}")
        return
    if verifier is None:
        click.echo(f"ok: {report.records} records, root {report.root}")
        return
    from govfn.chronicle.signing.witness import check_checkpoints

    logs = _logs(ledger, log_id)
    if _unnamed([log for _, log in logs]):
        log = logs[0][1]
        result = check_checkpoints(log, texts or stored_notes_by(log, verifier), verifier)
        if not result.ok:
            click.echo(f"FAILED: {result.message}", err=True)
            sys.exit(1)
        click.echo(f"ok: {report.records} records, root {report.root}; {result.message[4:]}")
        return
    verify_logs(logs, report.records, texts, verifier, log_id)


@chronicle.command()
@ledger_option
@click.argument("cid")
def show(path: str | None, cid: str) -> None:
    """Print one record."""
    record = _ledger(path).get(cid)
    if record is None:
        raise click.ClickException(f"no record {cid}")
    click.echo(
        json.dumps({"cid": record.cid, "type": record.type, "payload": record.payload}, indent=2)
    )


@chronicle.command()
@ledger_option
@click.argument("cid")
def proof(path: str | None, cid: str) -> None:
    """Print an RFC 6962 inclusion proof for one record (hashes in lowercase hex; on
    PostgreSQL with the record's `log`)."""
    ledger = _ledger(path)
    try:
        click.echo(json.dumps(ledger.proof(cid).to_dict(), indent=2))
    except KeyError:
        raise click.ClickException(f"no record {cid}") from None


@chronicle.command()
@click.option(
    "--ledger",
    "paths",
    multiple=True,
    metavar="FILE|URI",
    help="Ledger file or URI (default: GOVFN_CHRONICLE); repeat it to join several logs.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "dot"]),
    default="text",
    show_default=True,
    help="A readable tree, the graph as JSON, or Graphviz DOT.",
)
@click.argument("cid")
def lineage(paths: tuple[str, ...], fmt: str, cid: str) -> None:
    """Where CID came from and what it led to.

    CID is any CID govfn produced or recorded: a record's, a trigger event's, an
    output's, a reply's, a billable event's chronicle_cid (or an invocation id)."""
    from govfn.chronicle.lineage.formats import render
    from govfn.chronicle.lineage.graph import LineageIndex

    index = LineageIndex.build(*(_ledger(path) for path in paths or (None,)))
    try:
        graph = index.lineage(cid.strip())
    except KeyError:
        click.echo(
            f"error: {cid!r} is no CID or invocation id in the Chronicle "
            f"({index.records} records read)",
            err=True,
        )
        sys.exit(2)
    click.echo(render(graph, fmt))


@chronicle.command()
@ledger_option
@log_option
@click.argument("old_size", type=click.IntRange(min=0))
@click.argument("new_size", type=click.IntRange(min=0), required=False)
def consistency(path: str | None, log_id: int | None, old_size: int, new_size: int | None) -> None:
    """Print an RFC 6962 consistency proof from tree size OLD_SIZE to NEW_SIZE (default:
    the whole log), hashes in lowercase hex; on PostgreSQL of the log --log names (and
    with its `log`)."""
    ledger = _ledger(path)
    log = _one_log(ledger, log_id)
    try:
        printed = log.consistency(old_size, new_size)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    named = {} if log.log_id is None else {"log": log.log_id}
    click.echo(json.dumps(named | printed.to_dict(), indent=2))


@chronicle.command()
@ledger_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "openlineage"]),
    default="jsonl",
    show_default=True,
    help='jsonl: {"cid", "type", "payload"} per record; openlineage: one RunEvent per line.',
)
@click.option(
    "--namespace",
    envvar="GOVFN_NAMESPACE",
    default="govfn",
    show_default=True,
    help="OpenLineage job namespace: the deployment's (env GOVFN_NAMESPACE).",
)
def export(path: str | None, fmt: str, namespace: str) -> None:
    """Write every record as JSON Lines, or as OpenLineage RunEvents."""
    out = sys.stdout
    records = _ledger(path).records()
    if fmt == "jsonl":
        for record in records:
            out.write(record.to_json_line() + "\n")
        return
    from govfn.chronicle.lineage.openlineage import OpenLineageExport

    if not namespace.strip():
        raise click.BadParameter("must not be empty", param_hint="--namespace")
    for event in OpenLineageExport(namespace.strip()).events(records):
        out.write(json.dumps(event, separators=(",", ":")) + "\n")


@chronicle.command()
@ledger_option
@click.option(
    "--key",
    "key_path",
    default=None,
    metavar="FILE",
    help="Signer key file (default: GOVFN_CHRONICLE_SIGNING_KEY). Without one the tree "
    "head is stored unsigned and printed as JSON.",
)
@click.option(
    "--origin",
    default=None,
    help="The checkpoint's origin line (default: GOVFN_CHRONICLE_ORIGIN, else the key name).",
)
@log_option
def checkpoint(
    path: str | None, key_path: str | None, origin: str | None, log_id: int | None
) -> None:
    """Store the current tree head; later verification must still reproduce it. With a
    signer key, print a signed C2SP checkpoint note and store it beside the log. On
    PostgreSQL every log (or the one --log names) is signed, under the origin
    `<origin>/<log id>`: the notes are printed as JSON, or with --log the note itself."""
    settings = Settings.from_env()
    key_path = key_path or (str(settings.signing_key_path) if settings.signing_key_path else None)
    ledger = _ledger(path)
    if key_path is None and log_id is None:
        heads = ledger.checkpoint_logs()
        if len(heads) == 1 and heads[0].log is None:
            click.echo(json.dumps(heads[0].to_dict()))
        else:
            click.echo(json.dumps({"logs": [head.to_dict() for head in heads]}))
        return
    if key_path is None:
        raise click.UsageError("--log signs one log: give --key (or GOVFN_CHRONICLE_SIGNING_KEY)")
    logs = _logs(ledger, log_id)
    try:
        signer = read_signer(Path(key_path), "--key")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--key") from None
    from govfn.chronicle.signing.checkpoint import CheckpointError
    from govfn.chronicle.signing.witness import log_origin, sign_checkpoint

    origin = origin or settings.chronicle_origin or signer.name
    signed = []
    try:
        for name, log in logs:
            if name is not None and not log.head()[0]:
                continue  # a log that holds no record yet
            made, note = sign_checkpoint(log, signer, log_origin(origin, name))
            signed.append((name, made, note))
    except CheckpointError as exc:
        raise click.BadParameter(str(exc), param_hint="--origin") from None
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from None
    if _unnamed([log for _, log in logs]) or log_id is not None:
        if not signed:
            raise click.ClickException(f"log {log_id} holds no record to sign")
        click.echo(signed[0][2], nl=False)
        return
    notes = [
        {"log": int(str(name)), "tree_size": made.tree_size, "root": made.root.hex(), "note": note}
        for name, made, note in signed
    ]
    click.echo(json.dumps({"logs": notes}, indent=2))


@chronicle.command()
@click.argument("name")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for NAME.key (the signer key, mode 0600) and NAME.pub (the verifier key).",
)
def keygen(name: str, out_dir: Path) -> None:
    """Make an Ed25519 signed-note key pair named NAME (a schema-less URL such as
    example.com/billing is recommended); '/' in NAME becomes '_' in the file names."""
    click.echo(write_key_pair(name, out_dir))
