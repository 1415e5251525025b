"""`govfn serve`: the receivers and the management API on gunicorn.

The app is built once in the arbiter (functions imported, registry frozen) and the
workers fork from it; each worker opens its own ledger connection. With govfn's worker
(the default) each worker serves HTTP on one event loop, where functions run; with
`--worker-class gthread` each worker serves WSGI from a thread pool and starts an event
loop thread on first use. With `--single-process` there is no arbiter and no gunicorn:
this process binds and serves on govfn's event loop itself (what a Knative pod runs).

Every pod runs this command when it scales from zero, so it is parsed with argparse and
`govfn.cli.main` reaches it without loading click; gunicorn is imported only to run its
arbiter.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import socket
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from govfn.app import GovfnApp, create_app
from govfn.cli.preflight import check_writable, listen
from govfn.errors import GovfnError
from govfn.lifecycle import worker_started, worker_stopping
from govfn.observability.invocation_log import configure_logging
from govfn.receiver.config import HttpConfig
from govfn.registry import FunctionRegistry, load_functions
from govfn.settings import Settings, terminal_columns

if TYPE_CHECKING:
    from govfn.server.gunicorn_app import GunicornServer

LOOPBACK = "127.0.0.1"
WORKER_CLASSES = {"govfn": "govfn.server.worker.GovfnWorker", "gthread": "gthread"}

# Header limits: gunicorn refuses longer request lines / headers with 4xx itself, and so
# does govfn's worker (govfn.server.wire holds the same figures).
TIMEOUT_S = 120  # gunicorn's worker timeout: the arbiter's heartbeat
GRACEFUL_TIMEOUT_S = 30
HEADER_LIMITS = {
    "limit_request_line": 8190,
    "limit_request_fields": 100,
    "limit_request_field_size": 8190,
}


def main(argv: Sequence[str] | None = None) -> None:
    """`govfn serve [OPTIONS]`: parse, build the app, and run gunicorn until it stops."""
    cli = parser()
    args = cli.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        sys.exit(f"Error: {exc}")
    port = args.port
    if port is None:  # the option wins over PORT, which is checked as the option is
        try:
            port = PORT(settings.port or "8080")
        except argparse.ArgumentTypeError as exc:
            cli.error(f"argument --port: {exc}")
    host = args.host or (LOOPBACK if args.dev else "0.0.0.0")
    if args.dev and not args.no_reload and args.listen_fd is None:
        sys.exit(supervise(list(argv if argv is not None else sys.argv[2:]), host, port))
    serve(
        settings=settings,
        modules=tuple(args.modules),
        function_id=args.function_id or settings.function_id,
        host=host,
        port=port,
        workers=args.workers,
        threads=args.threads,
        worker_class=args.worker_class,
        keep_alive=args.keep_alive,
        max_body=args.max_body,
        max_in_flight=args.max_in_flight,
        dev=args.dev,
        single_process=args.single_process,
        listen_fd=args.listen_fd,
        ready_fd=args.ready_fd,
    )


def supervise(argv: list[str], host: str, port: int) -> int:
    """`--dev`: serve through the live-reload supervisor (`govfn.cli.reload`)."""
    from govfn.cli.reload import Supervisor

    try:
        listener = listen(host, port)
    except ValueError as exc:
        sys.exit(f"Error: {exc}")
    return Supervisor(argv, listener).run()


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="govfn serve",
        description="Serve every function's CloudEvents receiver and the management API.",
        formatter_class=_HelpFormatter,
    )
    cli.add_argument(
        "--functions",
        dest="modules",
        action="append",
        default=[],
        metavar="MODULE",
        help="Module defining functions (repeatable; default: GOVFN_FUNCTIONS, else the "
        "installed projects' govfn.functions entry points, else the built-ins echo and billing).",
    )
    cli.add_argument(
        "--function",
        dest="function_id",
        metavar="ID",
        help="Single-function mode: POST / is this function's receiver (env GOVFN_FUNCTION).",
    )
    cli.add_argument(
        "--host",
        help="Address to bind (default 0.0.0.0; with --dev 127.0.0.1, loopback only).",
    )
    cli.add_argument(
        "--port",
        type=PORT,
        help="Port to bind (env PORT, which Knative sets; default 8080).",
    )
    cli.add_argument(
        "--workers", type=_int_in(1, 64), default=1, help="Worker processes (default 1)."
    )
    cli.add_argument(
        "--threads",
        type=_int_in(1, 256),
        default=8,
        help="Threads per worker: for the management API with the govfn worker, for every "
        "request with gthread (default 8).",
    )
    cli.add_argument(
        "--worker-class",
        choices=sorted(WORKER_CLASSES),
        default="govfn",
        help="govfn (default): one event loop per worker serves HTTP and runs functions; "
        "gthread: gunicorn's threaded WSGI worker.",
    )
    cli.add_argument(
        "--keep-alive",
        type=_int_in(1, 3600),
        default=5,
        metavar="SECONDS",
        help="Close a connection idle for this long (default 5).",
    )
    cli.add_argument(
        "--max-body",
        type=_int_in(1),
        metavar="BYTES",
        help="Largest request body (default 10 MiB, env GOVFN_MAX_BODY_BYTES).",
    )
    cli.add_argument(
        "--max-in-flight",
        type=_int_in(1),
        metavar="N",
        help="Invocations a worker runs at once before answering 429 (env GOVFN_MAX_IN_FLIGHT).",
    )
    cli.add_argument(
        "--single-process",
        action="store_true",
        help="Serve from this process, the one govfn worker without gunicorn's arbiter: a "
        "pod's memory and start-up for one process, where the kubelet restarts what exits.",
    )
    cli.add_argument(
        "--dev",
        action="store_true",
        help="Development: listen on loopback unless --host says otherwise, open the "
        "direct-invoke API to loopback clients, log readably, and reload edited code.",
    )
    cli.add_argument(
        "--no-reload", action="store_true", help="With --dev: do not reload edited code."
    )
    # Set by the live-reload supervisor for the server it starts.
    cli.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    cli.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    return cli


def serve(
    *,
    settings: Settings | None = None,
    modules: tuple[str, ...] = (),
    function_id: str | None = None,
    host: str = "0.0.0.0",
    port: int = 8080,
    workers: int = 1,
    threads: int = 8,
    worker_class: str = "govfn",
    keep_alive: int = 5,
    max_body: int | None = None,
    max_in_flight: int | None = None,
    dev: bool = False,
    single_process: bool = False,
    listen_fd: int | None = None,
    ready_fd: int | None = None,
) -> None:
    """Serve the functions until gunicorn stops; exit 1 with a message when they cannot load,
    the port cannot be bound or the embedded Chronicle cannot be written."""
    configure_logging(dev)
    listener: socket.socket | None = None
    try:
        if listen_fd is None:  # bound now: a port in use fails before anything loads
            listener = listen(host, port)
        settings = settings or Settings.from_env()
        if single_process and workers != 1:
            raise ValueError(f"--single-process serves one worker, not --workers {workers}")
        if single_process and worker_class != "govfn":
            raise ValueError(
                f"--single-process runs govfn's worker, not --worker-class {worker_class}"
            )
        config = HttpConfig.from_settings(settings)
        overrides: dict[str, Any] = {"function_id": function_id or None, "dev": dev or config.dev}
        if max_body is not None:
            overrides["max_body_bytes"] = max_body
        if max_in_flight is not None:
            overrides["max_in_flight"] = max_in_flight
        config = dataclasses.replace(config, **overrides)
        settings = settings.with_functions(modules)
        check_writable(settings)
        before = set(sys.modules)
        registry = load_functions(settings.functions, FunctionRegistry())
        app = create_app(registry, config=config, settings=settings)
    except (GovfnError, ValueError) as exc:
        sys.exit(f"Error: {exc}")
    fd = listener.detach() if listener is not None else listen_fd  # the server takes it over
    assert fd is not None  # bound above unless the supervisor handed one over
    mode = f"function {config.function_id}" if config.function_id else "all functions"
    layout = "single process" if single_process else f"{workers} {worker_class} worker(s)"
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    print(
        f"govfn: serving {mode} ({len(app.registry)}) on http://{where} "
        f"[{layout} x {threads} threads{', dev' if config.dev else ''}]",
        file=sys.stderr,
    )
    if config.dev:
        print(f"govfn: {_dev_note(host)}", file=sys.stderr)
    log_level = "info" if config.dev else "warning"
    if single_process:
        from govfn.server.loop_server import ServingOptions
        from govfn.server.single_process import serve_single_process

        options = ServingOptions(
            threads=threads, keepalive_s=float(keep_alive), graceful_timeout_s=GRACEFUL_TIMEOUT_S
        )
        run: Callable[[], None] = partial(serve_single_process, app, fd, options, log_level)
    else:
        run = _gunicorn_server(app, fd, workers, threads, worker_class, keep_alive, log_level).run
    if ready_fd is not None:
        from govfn.cli.reload import report_ready, watched_files

        report_ready(ready_fd, watched_files(before, registry))
    run()
    sys.exit(0)


def _dev_note(host: str) -> str:
    """What --dev opens, and to whom."""
    from govfn.management.auth import is_loopback

    if is_loopback(host):
        return "dev: loopback only; the direct-invoke API is open without a token"
    return (
        f"dev: listening on {host}, beyond loopback; the direct-invoke API stays open only to "
        "loopback clients (others need GOVFN_API_TOKEN)"
    )


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help formatter, told the terminal's width: argparse makes one for every
    option it adds, and one left to find the width imports `shutil` (with the compression
    modules it imports: ~3 ms and ~0.4 MB of every start)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_columns() - 2)  # as argparse sizes itself


def _int_in(low: int, high: int | None = None, env: str | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]; the message names the env variable
    the value may have come from."""
    bounds = f"{low}..{high}" if high is not None else f">= {low}"

    def parse(text: str) -> int:
        try:
            value: int | None = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            source = f" (from env {env} or the option)" if env else ""
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer {bounds}{source}")
        return value

    return parse


PORT = _int_in(1, 65535, env="PORT")


def _collect_from_now_on(process: Any) -> None:
    """Cyclic collection, off while `govfn serve` starts, runs again; what start-up built
    lives as long as the process, so it is frozen out of every collection."""
    gc.freeze()
    gc.enable()


def _gunicorn_server(
    app: GovfnApp,
    fd: int,
    workers: int,
    threads: int,
    worker_class: str,
    keep_alive: int,
    log_level: str,
) -> GunicornServer:
    """gunicorn's arbiter with `govfn serve`'s options: it forks `workers` workers of
    `worker_class` when it runs."""
    from govfn.server.gunicorn_app import GunicornServer
    from govfn.server.gunicorn_log import GunicornLog

    options: dict[str, Any] = {
        "bind": f"fd://{fd}",
        "workers": workers,
        "threads": threads,
        "worker_class": WORKER_CLASSES[worker_class],
        "preload_app": True,
        "proc_name": "govfn",
        "timeout": TIMEOUT_S,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "keepalive": keep_alive,
        "accesslog": None,
        "logger_class": GunicornLog,
        "control_socket_disable": True,
        "loglevel": log_level,
        "when_ready": _collect_from_now_on,
        **HEADER_LIMITS,
    }
    if worker_class == "gthread":  # govfn's worker starts and stops the app itself

        def post_worker_init(worker: Any) -> None:
            _collect_from_now_on(worker)
            worker_started(app)

        options["post_worker_init"] = post_worker_init
        options["worker_exit"] = lambda arbiter, worker: worker_stopping(app)
    return GunicornServer(app, options)
