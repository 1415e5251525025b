"""`govfn serve`: the receivers and the management API on gunicorn.

The app is built once in the arbiter (functions imported, registry frozen) and the
workers fork from it; each worker opens its own ledger connection. With govfn's worker
(the default) each worker serves HTTP on one event loop, where functions run; with
`--worker-class gthread` each worker serves WSGI from a thread pool and starts an event
loop thread on first use.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from govfn.cli.options import functions_option
from govfn.errors import GovfnError
from govfn.http.app import GovfnApp, create_app
from govfn.http.config import HttpConfig
from govfn.http.invocation_log import configure_logging
from govfn.registry import FunctionRegistry, load_functions
from govfn.settings import Settings

WORKER_CLASSES = {"govfn": "govfn.http.worker.GovfnWorker", "gthread": "gthread"}

# Header limits: gunicorn refuses longer request lines / headers with 4xx itself, and so
# does govfn's worker (govfn.http.wire holds the same figures).
HEADER_LIMITS = {
    "limit_request_line": 8190,
    "limit_request_fields": 100,
    "limit_request_field_size": 8190,
}


class GunicornServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: GovfnApp, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self) -> GovfnApp:
        return self.application


@click.command()
@functions_option
@click.option(
    "--function",
    "function_id",
    envvar="GOVFN_FUNCTION",
    default=None,
    metavar="ID",
    help="Single-function mode: POST / is this function's receiver (env GOVFN_FUNCTION).",
)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    envvar="PORT",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    help="Port to bind (env PORT, which Knative sets).",
)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Threads per worker: for the management API with the govfn worker, for every "
    "request with gthread.",
)
@click.option(
    "--worker-class",
    type=click.Choice(sorted(WORKER_CLASSES)),
    default="govfn",
    show_default=True,
    help="govfn: one event loop per worker serves HTTP and runs functions; "
    "gthread: gunicorn's threaded WSGI worker.",
)
@click.option(
    "--keep-alive",
    "keep_alive",
    type=click.IntRange(1, 3600),
    default=5,
    show_default=True,
    metavar="SECONDS",
    help="Close a connection idle for this long.",
)
@click.option(
    "--max-body",
    type=click.IntRange(1),
    default=None,
    metavar="BYTES",
    help="Largest request body (default 10 MiB, env GOVFN_MAX_BODY_BYTES).",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="Invocations a worker runs at once before answering 429 (env GOVFN_MAX_IN_FLIGHT).",
)
@click.option("--dev", is_flag=True, help="Open the direct-invoke API and log readably.")
def serve(
    modules: tuple[str, ...],
    function_id: str | None,
    host: str,
    port: int,
    workers: int,
    threads: int,
    worker_class: str,
    keep_alive: int,
    max_body: int | None,
    max_in_flight: int | None,
    dev: bool,
) -> None:
    """Serve every function's CloudEvents receiver and the management API."""
    configure_logging(dev)
    try:
        config = HttpConfig.from_env()
        overrides: dict[str, Any] = {"function_id": function_id or None, "dev": dev or config.dev}
        if max_body is not None:
            overrides["max_body_bytes"] = max_body
        if max_in_flight is not None:
            overrides["max_in_flight"] = max_in_flight
        config = dataclasses.replace(config, **overrides)
        settings = Settings.from_env().with_functions(modules)
        registry = load_functions(settings.functions, FunctionRegistry())
        app = create_app(registry, config=config, settings=settings)
    except (GovfnError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    mode = f"function {config.function_id}" if config.function_id else "all functions"
    click.echo(
        f"govfn: serving {mode} ({len(app.registry)}) on http://{host}:{port} "
        f"[{workers} {worker_class} worker(s) x {threads} threads{', dev' if config.dev else ''}]",
        err=True,
    )
    options: dict[str, Any] = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": WORKER_CLASSES[worker_class],
        "preload_app": True,
        "proc_name": "govfn",
        "timeout": 120,
        "graceful_timeout": 30,
        "keepalive": keep_alive,
        "accesslog": None,
        "errorlog": "-",
        "control_socket_disable": True,
        "loglevel": "info" if config.dev else "warning",
        **HEADER_LIMITS,
    }
    if worker_class == "gthread":  # govfn's worker starts and stops the app itself
        options["post_worker_init"] = lambda worker: app.worker_started()
        options["worker_exit"] = lambda arbiter, worker: app.worker_stopping()
    GunicornServer(app, options).run()
    sys.exit(0)
