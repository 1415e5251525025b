"""`govfn manifests` and `govfn apply`: render (and apply) the Knative objects of the functions.

Anything Knative would refuse exits with status 2 and a message naming the field.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from govfn.cli.options import functions_option, load_settings
from govfn.manifest.config import load_options
from govfn.manifest.errors import ManifestError
from govfn.manifest.options import ManifestOptions
from govfn.registry import FunctionRegistry

F = TypeVar("F", bound=Callable[..., Any])
REFUSED = 2


def _pairs(flag: str) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], Any]:
    def parse(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
        if not values:
            return None
        result: dict[str, str] = {}
        for value in values:
            key, sep, item = value.partition("=")
            if not sep or not key:
                raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=flag)
            result[key] = item
        return result

    return parse


def _given(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    return values or None  # not given: the config file's list, if any


_OPTIONS: list[Callable[[F], F]] = [
    click.option("--image", help="Container image holding the project (required)."),
    click.option("--namespace", help="Namespace (manifests: none set; apply: the context's)."),
    click.option("--broker", help="Broker the Triggers subscribe to [default: default]."),
    click.option("--app", help="app.kubernetes.io/part-of value [default: govfn]."),
    click.option("--name-prefix", help="Prefix of every Service name."),
    click.option("--min-scale", type=int, help="autoscaling.knative.dev/min-scale."),
    click.option("--max-scale", type=int, help="autoscaling.knative.dev/max-scale."),
    click.option("--concurrency", "target_concurrency", type=int, help="Autoscaling target."),
    click.option("--container-concurrency", type=int, help="Hard limit per pod (0..1000)."),
    click.option("--timeout-seconds", type=int, help="Request timeout (<= 600)."),
    click.option("--service-account", help="serviceAccountName of the pods."),
    click.option("--visibility", type=click.Choice(["cluster-local", "public"])),
    click.option("--retry", type=int, help="Trigger delivery: number of retries."),
    click.option("--backoff-policy", type=click.Choice(["linear", "exponential"])),
    click.option("--backoff-delay", help="Trigger delivery: ISO-8601 duration, e.g. PT0.5S."),
    click.option("--dead-letter-sink", help="URL, or ksvc:NAME / broker:NAME / service:NAME."),
    click.option("--delivery-timeout", help="Trigger delivery: per-attempt timeout (ISO-8601)."),
    click.option("--filter", "filters", multiple=True, callback=_pairs("--filter"),
                 metavar="ATTR=VALUE", help="Extra exact Trigger filter (repeatable)."),
    click.option("--label", "labels", multiple=True, callback=_pairs("--label"),
                 metavar="KEY=VALUE", help="Label on every object (repeatable)."),
    click.option("--annotation", "annotations", multiple=True, callback=_pairs("--annotation"),
                 metavar="KEY=VALUE", help="Annotation on every object (repeatable)."),
    click.option("--env", multiple=True, callback=_pairs("--env"), metavar="NAME=VALUE",
                 help="Environment variable of the container (repeatable)."),
    click.option("--chronicle-sink", metavar="broker:NAME|URL|none",
                 help="Where the SinkBinding sends the Chronicle's records (K_SINK) "
                      "[default: the Triggers' broker]; none renders no SinkBinding."),
    click.option("--database-secret", metavar="NAME[:KEY]",
                 help="Read GOVFN_CHRONICLE (a libpq URI) from this Secret's key "
                      "[default key: uri]; the emptyDir then holds only the spool."),
    click.option("--var-size-limit", metavar="QUANTITY",
                 help="sizeLimit of the ledger/spool emptyDir [default: 1Gi]."),
    click.option("--oidc-issuer", metavar="URL",
                 help="Receivers accept only Knative OIDC tokens from this issuer "
                      "(e.g. https://kubernetes.default.svc); Triggers name their audience. "
                      "Needs Knative's authentication-oidc feature [default: off]."),
    click.option("--event-sender", "event_senders", multiple=True, callback=_given,
                 metavar="SUB", help="A subject allowed to send events (a trailing * makes it a "
                 "prefix), or `triggers`: the function's own Triggers (repeatable; "
                 "default: any valid token)."),
    click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                 help="govfn.yaml or pyproject.toml [tool.govfn] (default: either, in the cwd)."),
    click.option("--allow-reply-loops", is_flag=True, default=None,
                 help="Render functions whose replies trigger themselves."),
    click.option("--event-types", is_flag=True, default=None,
                 help="Also render a Knative EventType (eventing.knative.dev/v1beta2) per "
                      "trigger type of each typed function, with its data's JSON Schema."),
]  # fmt: skip


def manifest_options(fn: F) -> F:
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return functions_option(fn)


def _resolve(
    modules: tuple[str, ...], flags: dict[str, Any]
) -> tuple[ManifestOptions, FunctionRegistry]:
    config_file = flags.pop("config_file", None)
    delivery = {
        "retry": flags.pop("retry"),
        "backoff_policy": flags.pop("backoff_policy"),
        "backoff_delay": flags.pop("backoff_delay"),
        "dead_letter_sink": flags.pop("dead_letter_sink"),
        "timeout": flags.pop("delivery_timeout"),
    }
    flags["delivery"] = {k: v for k, v in delivery.items() if v is not None} or None
    options, config_modules = load_options(flags, config_file)
    _, registry = load_settings(modules or config_modules)
    return options, registry


def refuse(exc: ManifestError) -> None:
    click.echo(f"Error: {exc}", err=True)
    sys.exit(REFUSED)


@click.command()
@manifest_options
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["yaml", "json", "helm-values"]),
    default="yaml",
    show_default=True,
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to FILE instead of stdout.")  # fmt: skip
def manifests(
    modules: tuple[str, ...], output_format: str, output: Path | None, **flags: Any
) -> None:
    """Render the Knative Service, Triggers and SinkBinding of every function
    (| kubectl apply -f -)."""
    from govfn.manifest.output import render_output

    try:
        options, registry = _resolve(modules, flags)
        text = render_output(registry, options, output_format)
    except ManifestError as exc:
        refuse(exc)
        return
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def _with_some_namespace(options: ManifestOptions) -> ManifestOptions:
    """`options` for a check before the context names the namespace (which OIDC needs)."""
    from dataclasses import replace

    if options.namespace or options.oidc_issuer is None:
        return options
    return replace(options, namespace="default")


@click.command()
@manifest_options
@click.option(
    "--dry-run",
    is_flag=True,
    help="Server-side dry run (dryRun=All); with no cluster configured, the client-side "
    "checks alone.",
)
@click.option("--prune", is_flag=True, help="Delete this app's govfn objects no longer rendered.")
@click.option("--wait", is_flag=True, help="Wait until every object is Ready.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="--wait limit (s).")
@click.option("--context", help="kubeconfig context.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="kubeconfig file.")
def apply(
    modules: tuple[str, ...],
    dry_run: bool,
    prune: bool,
    wait: bool,
    timeout: float,
    context: str | None,
    kubeconfig: str | None,
    **flags: Any,
) -> None:
    """Server-side apply the functions' Knative objects (field manager govfn)."""
    from dataclasses import replace

    from govfn.manifest.apply import Applier, ApplyError, Target, connect
    from govfn.manifest.render import render_all

    try:
        options, registry = _resolve(modules, flags)
        checked = render_all(registry, _with_some_namespace(options))  # refuse before connecting
        try:
            api_client, default_namespace = connect(Target(kubeconfig=kubeconfig, context=context))
        except ApplyError as exc:
            if not dry_run:
                raise ApplyError(
                    exc.field,
                    f"{exc.reason.rstrip('.')}; `govfn manifests` renders the objects "
                    "without a cluster, `govfn apply --dry-run` checks them client-side",
                ) from None
            _checked_client_side(checked, exc.reason)
            return
        try:
            namespace = options.namespace or default_namespace
            objects = render_all(registry, replace(options, namespace=namespace))
            applier = Applier(
                api_client, namespace, echo=click.echo, warn=lambda line: click.echo(line, err=True)
            )
            applier.apply(objects, dry_run=dry_run)
            if prune:
                applier.prune(objects, options.app, dry_run=dry_run)
            if wait and not dry_run:
                applier.wait(objects, timeout)
        finally:
            api_client.close()
    except ApplyError as exc:  # the cluster's answer (or its absence), not a refused manifest
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except ManifestError as exc:
        refuse(exc)


def _checked_client_side(objects: list[dict[str, Any]], reason: str) -> None:
    """`apply --dry-run` with no cluster: what passed govfn's own checks, and where to go."""
    click.echo(f"No cluster to dry-run against ({reason.rstrip('.')}).", err=True)
    click.echo("Checked client-side (the rules of Knative's admission webhooks); nothing sent:")
    for item in objects:
        click.echo(f"  {item['kind']} {item['metadata']['name']} (checked, client side)")
    click.echo("`govfn manifests` prints these objects; with a kubeconfig, --dry-run asks the "
               "cluster too.")  # fmt: skip
