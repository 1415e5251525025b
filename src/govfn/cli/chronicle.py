"""`govfn chronicle verify | show | proof | lineage | export | checkpoint`."""

from __future__ import annotations

import json
import sys

import click

from govfn.chronicle.ledger import Ledger
from govfn.settings import Settings


def _ledger(path: str | None) -> Ledger:
    settings = Settings.from_env()
    ledger = Ledger(path or settings.chronicle_path, sync=settings.chronicle_sync)
    if not ledger.path.exists():
        raise click.ClickException(f"no Chronicle ledger at {str(ledger.path)!r}")
    return ledger


ledger_option = click.option(
    "--ledger", "path", default=None, metavar="FILE", help="Ledger file (default: GOVFN_CHRONICLE)."
)


@click.group()
def chronicle() -> None:
    """Inspect and check the embedded Chronicle ledger."""


@chronicle.command()
@ledger_option
def verify(path: str | None) -> None:
    """Recompute every CID, the hash chain, the Merkle tree and the checkpoints."""
    report = _ledger(path).verify()
    if report.ok:
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
    """Print an RFC 6962 inclusion proof for one record."""
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
    metavar="FILE",
    help="Ledger file (default: GOVFN_CHRONICLE); repeat it to join several logs.",
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
    from govfn.chronicle.openlineage import OpenLineageExport

    if not namespace.strip():
        raise click.BadParameter("must not be empty", param_hint="--namespace")
    for event in OpenLineageExport(namespace.strip()).events(records):
        out.write(json.dumps(event, separators=(",", ":")) + "\n")


@chronicle.command()
@ledger_option
def checkpoint(path: str | None) -> None:
    """Store the current tree head; later verification must still reproduce it."""
    size, root = _ledger(path).checkpoint()
    click.echo(json.dumps({"tree_size": size, "root": root}))
