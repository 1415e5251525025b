"""`govfn functions` and `govfn invoke`."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import click

from govfn import assembly
from govfn.chronicle.store import LedgerError
from govfn.cli.options import functions_option, load_settings
from govfn.function import FunctionContext


@click.command()
@functions_option
@click.option("--json", "as_json", is_flag=True, help="Print every descriptor as JSON.")
def functions(modules: tuple[str, ...], as_json: bool) -> None:
    """List the registered functions."""
    _, registry = load_settings(modules)
    if as_json:
        click.echo(json.dumps([p.descriptor() for p in registry.all()], indent=2))
        return
    rows = [("ID", "VERSION", "TRIGGERS", "EMITS")] + [
        (p.function_id, p.version, ",".join(p.trigger_events), ",".join(p.emits) or "-")
        for p in registry.all()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@click.command()
@functions_option
@click.argument("function_id")
@click.option("--data", "data_text", default="null", help="Event data as JSON.")
@click.option("--type", "event_type", default=None, help="Event type (default: first trigger).")
@click.option("--source", default="/govfn/cli", show_default=True, help="Event source.")
@click.option("--subject", default=None, help="Event subject.")
@click.option("--gsap-context", default=None, help="GSAP context id (gsapcontextid).")
def invoke(
    modules: tuple[str, ...],
    function_id: str,
    data_text: str,
    event_type: str | None,
    source: str,
    subject: str | None,
    gsap_context: str | None,
) -> None:
    """Invoke a function in-process and record it in the Chronicle ledger."""
    try:
        data = json.loads(data_text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--data") from None
    settings, registry = load_settings(modules)
    plugin = registry.get(function_id)
    kind = event_type or (plugin.trigger_events[0] if plugin and plugin.trigger_events else None)
    context = FunctionContext(
        trigger_event_kind=kind,
        gsap_context_id=gsap_context,
        event_id=str(uuid.uuid4()),
        event_source=source,
        event_subject=subject,
    )
    ledger = assembly.ledger(settings)
    try:
        ledger.prepare()
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from None
    runtime = assembly.runtime_from(settings, registry, ledger.client())
    try:
        result = asyncio.run(runtime.invoke(function_id, data, context))
    finally:
        ledger.close()
    click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    sys.exit(0 if result.success else 1)
