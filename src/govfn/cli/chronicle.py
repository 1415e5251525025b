"""`govfn chronicle init | verify | show | proof | export | checkpoint`, on either backend.

`--ledger` (default GOVFN_CHRONICLE) names a SQLite file or a PostgreSQL URI. A ledger that
cannot be reached is a one-line error naming where it was looked for (never a password).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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
@ledger_option
def export(location: str | None) -> None:
    """Write every record as JSON Lines: {"cid", "type", "payload"}."""
    out = sys.stdout
    with _ledger(location) as ledger:
        for record in ledger.records():
            out.write(record.to_json_line() + "\n")


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
