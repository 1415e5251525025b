"""`govfn chronicle init | verify | show | proof | lineage | export | checkpoint`, on either
backend.

`--ledger` (default GOVFN_CHRONICLE) names a SQLite file or a PostgreSQL URI. A ledger that
cannot be reached is a one-line error naming where it was looked for (never a password).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import click

from govfn.chronicle.ledger import Ledger
from govfn.chronicle.store import ChronicleLedger, LedgerError
from govfn.idempotency import IdempotencyUnavailable
from govfn.postgres import is_uri
from govfn.settings import Settings, chronicle_ledger


@contextmanager
def _ledger(location: str | None, *, must_exist: bool = True) -> Iterator[ChronicleLedger]:
    """The ledger `location` names, reachable and with its schema, else a one-line error."""
    settings = Settings.from_env()
    ledger = chronicle_ledger(location or settings.chronicle_location, sync=settings.chronicle_sync)
    if isinstance(ledger, Ledger):
        if must_exist and not ledger.path.exists():
            raise click.ClickException(f"no Chronicle ledger at {str(ledger.path)!r}")
    else:
        ledger.create_schema = False  # reading creates nothing: `init` does
    try:
        ledger.prepare()
        yield ledger
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ledger.close()


ledger_option = click.option(
    "--ledger",
    "location",
    default=None,
    metavar="FILE|URI",
    help="Ledger file or postgresql:// URI (default: GOVFN_CHRONICLE).",
)


@click.group()
def chronicle() -> None:
    """Inspect and check the Chronicle ledger (a SQLite file or PostgreSQL)."""


@chronicle.command()
@ledger_option
def init(location: str | None) -> None:
    """Create the ledger and its schema (for serving roles that may not run DDL), and the
    idempotency store's tables when it lives in PostgreSQL (GOVFN_IDEMPOTENCY, or by
    default the ledger's database)."""
    settings = Settings.from_env()
    ledger = chronicle_ledger(location or settings.chronicle_location, sync=settings.chronicle_sync)
    try:
        if isinstance(ledger, Ledger):
            ledger.prepare()
            click.echo(f"ok: Chronicle ledger {str(ledger.path)!r} ready")
        else:
            ledger.init_schema()
            click.echo(f"ok: Chronicle schema ready in {ledger.where}")
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ledger.close()
    store = os.environ.get("GOVFN_IDEMPOTENCY") or location or settings.chronicle_location
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
def verify(location: str | None) -> None:
    """Recompute every CID, each log's hash chain and Merkle tree, and the checkpoints."""
    with _ledger(location) as ledger:
        report = ledger.verify()
    if report.ok:
        if any(head.log is not None for head in report.heads):
            click.echo(f"ok: {report.records} records in {len(report.heads)} logs")
            for head in report.heads:
                click.echo(f"  log {head.log}: {head.tree_size} records, root {head.root}")
        else:
            click.echo(f"ok: {report.records} records, root {report.root}")
        return
    click.echo(
        f"FAILED at record {report.bad_seq} ({report.bad_cid}): {report.problem}"
        if report.bad_seq is not None
        else f"FAILED: {report.problem}",
        err=True,
    )
    sys.exit(1)


@chronicle.command()
@ledger_option
@click.argument("cid")
def show(location: str | None, cid: str) -> None:
    """Print one record."""
    with _ledger(location) as ledger:
        record = ledger.get(cid)
    if record is None:
        raise click.ClickException(f"no record {cid}")
    click.echo(
        json.dumps({"cid": record.cid, "type": record.type, "payload": record.payload}, indent=2)
    )


@chronicle.command()
@ledger_option
@click.argument("cid")
def proof(location: str | None, cid: str) -> None:
    """Print an RFC 6962 inclusion proof for one record (with its log on PostgreSQL)."""
    with _ledger(location) as ledger:
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
    help="Ledger file or postgresql:// URI (default: GOVFN_CHRONICLE); repeat it to join "
    "several logs.",
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
    from govfn.chronicle.lineage import LineageIndex
    from govfn.chronicle.lineage_formats import render

    with ExitStack() as opened:
        ledgers = [opened.enter_context(_ledger(path)) for path in paths or (None,)]
        index = LineageIndex.build(*ledgers)
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
def export(location: str | None, fmt: str, namespace: str) -> None:
    """Write every record as JSON Lines, or as OpenLineage RunEvents."""
    out = sys.stdout
    if fmt == "openlineage" and not namespace.strip():
        raise click.BadParameter("must not be empty", param_hint="--namespace")
    with _ledger(location) as ledger:
        records = ledger.records()
        if fmt == "jsonl":
            for record in records:
                out.write(record.to_json_line() + "\n")
            return
        from govfn.chronicle.openlineage import OpenLineageExport

        for event in OpenLineageExport(namespace.strip()).events(records):
            out.write(json.dumps(event, separators=(",", ":")) + "\n")


@chronicle.command()
@ledger_option
def checkpoint(location: str | None) -> None:
    """Store the current tree head of every log; later verification must still reproduce it."""
    with _ledger(location) as ledger:
        heads = ledger.checkpoint_logs()
    if len(heads) == 1 and heads[0].log is None:
        click.echo(json.dumps(heads[0].to_dict()))
    else:
        click.echo(json.dumps({"logs": [head.to_dict() for head in heads]}))
