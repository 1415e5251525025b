"""`govfn chronicle verify | show | proof | export | checkpoint`."""

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
@ledger_option
def export(path: str | None) -> None:
    """Write every record as JSON Lines: {"cid", "type", "payload"}."""
    out = sys.stdout
    for record in _ledger(path).records():
        out.write(record.to_json_line() + "\n")


@chronicle.command()
@ledger_option
def checkpoint(path: str | None) -> None:
    """Store the current tree head; later verification must still reproduce it."""
    size, root = _ledger(path).checkpoint()
    click.echo(json.dumps({"tree_size": size, "root": root}))
