"""The WSGI application: receivers and health on a thin path, the rest on Flask.

`create_app()` is what `gunicorn 'govfn.app:create_app()'` and `govfn serve` call.
Receivers (`POST /`, `POST /functions/<id>/events`) and the health probes never touch
Flask; the management API is a Flask app built, and Flask imported, on the first
request that needs it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from govfn import assembly
from govfn.assembly import Services
from govfn.chronicle.chronicle import Chronicle
from govfn.observability.health import HEALTH_PATHS, health_answer
from govfn.observability.invocation_log import InvocationLog, configure_logging
from govfn.observability.metrics import Metrics, PodMetrics
from govfn.problem import HttpProblem, status_line
from govfn.receiver.config import HttpConfig
from govfn.receiver.loop_thread import LoopThread
from govfn.receiver.receivers import Receivers, StartResponse
from govfn.receiver.state import ServerState
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime
from govfn.settings import Settings

if TYPE_CHECKING:
    from govfn.observability.tracing import InvocationTracer
    from govfn.testing import Client

__all__ = ["GovfnApp", "HttpConfig", "HttpProblem", "ServerState", "create_app"]

log = logging.getLogger("govfn.app")

WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_EVENTS_PREFIX = "/functions/"
_EVENTS_SUFFIX = "/events"

RECEIVER, HEALTH, MANAGEMENT = "receiver", "health", "management"


class GovfnApp:
    """The WSGI callable. Holds the runtime, the config, the state and the metrics."""

    # What `route` serves without Flask, as (method, OpenAPI path); the management API's
    # routes are its Flask URL map's. HEAD is answered as GET.
    OWN_ROUTES: tuple[tuple[str, str], ...] = (
        ("POST", "/"),
        ("POST", "/functions/{function_id}/events"),
        ("GET", "/health"),
        ("GET", "/health/"),
        ("GET", "/health/liveness"),
        ("GET", "/health/readiness"),
    )

    def __init__(
        self,
        runtime: FunctionRuntime,
        config: HttpConfig,
        *,
        state: ServerState | None = None,
        loop: LoopThread | None = None,
        metrics: Metrics | None = None,
        services: Services | None = None,
        ledger: Chronicle | None = None,
    ) -> None:
        self.runtime = runtime
        self.ledger = ledger if ledger is not None else _ledger_of(runtime)
        self.registry = runtime.registry
        self.config = config
        self.state = state or ServerState(config.max_in_flight)
        self.loop = loop or LoopThread()
        self.metrics = metrics or Metrics()
        self.receivers = Receivers(runtime, config, self.state, self.loop, self.metrics)
        self.services = services or Services()
        self.sink = sink = self.services.sink
        openlineage = self.services.openlineage
        self.tracer: InvocationTracer | None = None  # with govfn[otel] and OTEL_* set
        if sink is not None:
            runtime.observers.append(lambda plugin, context, result: sink.notify())
        if openlineage is not None:
            runtime.observers.append(lambda plugin, context, result: openlineage.notify())
        self._management: WsgiApp | None = None
        self._management_lock = threading.Lock()
        self._check: Future[bool] | None = None
        self._next_check = 0.0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD") or ""
        route, function_id = self.route(method, environ.get("PATH_INFO") or "/")
        if route == RECEIVER:
            return self.receivers(environ, start_response, function_id)
        if route == HEALTH:
            answer = self.health(environ.get("PATH_INFO") or "/")
            if answer is not None:
                status, body = answer
                start_response(
                    status_line(status),
                    [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
                )
                return [body]
        return self.management(environ, start_response)

    def route(self, method: str, path: str) -> tuple[str, str | None]:
        """Which path serves a request: (RECEIVER, function id or None), (HEALTH, None)
        or (MANAGEMENT, None). Receivers and health never touch Flask."""
        if path == "/" and method == "POST":
            return RECEIVER, self.config.function_id
        if path.startswith(_EVENTS_PREFIX) and path.endswith(_EVENTS_SUFFIX):
            function_id = path[len(_EVENTS_PREFIX) : -len(_EVENTS_SUFFIX)]
            if function_id and "/" not in function_id:
                return RECEIVER, function_id
        if path in HEALTH_PATHS and method in ("GET", "HEAD"):
            return HEALTH, None
        return MANAGEMENT, None

    def health(self, path: str) -> tuple[int, bytes] | None:
        """The answer to a health probe path, or None if `path` is not one."""
        return health_answer(path, self.state, len(self.registry), self.dependencies_usable)

    def dependencies_usable(self) -> bool:
        """The Chronicle takes records and the idempotency store answers (see
        FunctionRuntime.usable). While not, a probe asks them again, once a second at most."""
        if self.runtime.usable:
            return True
        now = time.monotonic()
        if (self._check is None or self._check.done()) and now >= self._next_check:
            self._next_check = now + 1.0
            self._check = self.loop.submit(self.runtime.check())
        return False

    @property
    def management(self) -> WsgiApp:
        """The Flask management app, built on first use."""
        if self._management is None:
            with self._management_lock:
                if self._management is None:
                    from govfn.management.api import build_management_app

                    self._management = build_management_app(self)
        return self._management

    def test_client(self) -> Client:
        """A Werkzeug test client (the one Flask's `test_client` returns) for this app."""
        from govfn.testing import test_client

        return test_client(self)


def create_app(
    registry: FunctionRegistry | None = None,
    *,
    runtime: FunctionRuntime | None = None,
    config: HttpConfig | None = None,
    settings: Settings | None = None,
    functions: Sequence[str] = (),
    function_id: str | None = None,
    dev: bool | None = None,
) -> GovfnApp:
    """Build the app. With no arguments everything comes from the environment
    (GOVFN_FUNCTIONS, GOVFN_FUNCTION, GOVFN_CHRONICLE, GOVFN_API_TOKEN, ...)."""
    from_env: Settings | None = None
    if config is None:
        from_env = settings or Settings.from_env()
        config = HttpConfig.from_settings(from_env)
        if runtime is None:  # the runtime below is built from the same reading
            settings = from_env
    ledger: Chronicle | None = None
    if function_id is not None:
        config = dataclasses.replace(config, function_id=function_id)
    if dev is not None:
        config = dataclasses.replace(config, dev=dev)
    if runtime is None:
        settings = (settings or Settings.from_env()).with_functions(tuple(functions))
        if registry is None:
            registry = load_functions(settings.functions, FunctionRegistry())
        registry = _single_function(registry, config.function_id)
        registry.freeze("govfn.app")
        ledger = assembly.ledger(settings, serving=True)
        claims = any(plugin.idempotent for plugin in registry)  # frozen: none comes later
        runtime = assembly.runtime_from(settings, registry, ledger.client(), claims=claims)
        runtime.prepare()  # what fails is logged; readiness waits until it answers
    else:
        if config.function_id is not None and config.function_id not in runtime.registry:
            raise ValueError(_not_registered(config.function_id, runtime.registry))
        runtime.registry.freeze("govfn.app")
    configure_logging(readable=config.dev)
    if ledger is None:  # (not `or`: an empty Chronicle is falsy, and len() opens it)
        ledger = _ledger_of(runtime)
    app = GovfnApp(
        runtime,
        config,
        metrics=Metrics(_pod_metrics(settings)),
        services=assembly.Services.from_settings(settings, ledger) if settings else None,
        ledger=ledger,
    )
    runtime.observers.append(app.metrics.observe)
    runtime.observers.append(InvocationLog(readable=config.dev))
    telemetry = settings or from_env or Settings.from_env()  # OTEL_* ask for traces
    if telemetry.traces:
        app.tracer = _tracer(runtime, telemetry)
    app.state.mark_started()
    return app


def _ledger_of(runtime: FunctionRuntime) -> Chronicle | None:
    """The Chronicle a runtime built elsewhere appends to, if its client writes to one (not
    a `MemoryChronicle`, say)."""
    client = runtime.backstop.client if runtime.backstop is not None else None
    ledger = getattr(client, "ledger", None)
    return ledger if isinstance(ledger, Chronicle) else None


def _tracer(runtime: FunctionRuntime, settings: Settings) -> InvocationTracer | None:
    """Traces of every invocation, when the govfn[otel] extra is installed."""
    try:
        from govfn.observability.tracing import trace_invocations
    except ImportError as exc:
        log.warning("OTEL_* variables ask for traces but %s; install govfn[otel]", exc)
        return None
    return trace_invocations(runtime, settings.telemetry)


def _pod_metrics(settings: Settings | None) -> PodMetrics | None:
    """The directory where a pod's workers keep their counters: beside the ledger. Only an
    app built from settings (a serving process's) counts for the pod."""
    if settings is None:
        return None
    pod = PodMetrics(settings.chronicle_path.parent / "metrics")
    try:
        pod.reset()
    except OSError as exc:
        log.warning("metrics stay per worker: %s", exc)
        return None
    return pod


def _single_function(registry: FunctionRegistry, function_id: str | None) -> FunctionRegistry:
    if function_id is None:
        return registry
    plugin = registry.get(function_id)
    if plugin is None:
        raise ValueError(_not_registered(function_id, registry))
    single = FunctionRegistry()
    single.register(plugin)
    return single


def _not_registered(function_id: str, registry: FunctionRegistry) -> str:
    known = ", ".join(p.function_id for p in registry.all()) or "none"
    return (
        f"function {function_id!r} is not registered (registered: {known}); is its project "
        "installed? `pip install -e .` in the project registers its govfn.functions entry "
        "point, or name the module that defines it with --functions MODULE"
    )
