"""The management API (Flask): catalogue, direct invoke and dispatch, manifests, metrics.

Imported on the first management request only; the receivers never load Flask.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from govfn.errors import GovfnError
from govfn.function import FunctionContext, FunctionResult
from govfn.management.auth import LINEAGE, authorize
from govfn.management.lineage import LineageViews
from govfn.management.openapi import openapi_document, openapi_path
from govfn.outcome import ErrorKind
from govfn.problem import HttpProblem
from govfn.receiver.delivery import status_for

if TYPE_CHECKING:
    from govfn.chronicle.chronicle import Chronicle
    from govfn.chronicle.sink import SinkSender
    from govfn.observability.metrics import Metrics
    from govfn.receiver.config import HttpConfig
    from govfn.receiver.loop_thread import LoopThread
    from govfn.receiver.state import ServerState
    from govfn.registry import FunctionRegistry
    from govfn.runtime import FunctionRuntime


class ManagedApp(Protocol):
    """What the management API serves from (`app.GovfnApp` is one): it does not import the
    app, which builds it on first use."""

    registry: FunctionRegistry
    runtime: FunctionRuntime
    config: HttpConfig
    state: ServerState
    loop: LoopThread
    metrics: Metrics
    sink: SinkSender | None
    ledger: Chronicle | None
    OWN_ROUTES: tuple[tuple[str, str], ...]  # what the app serves without Flask


def build_management_app(app: ManagedApp) -> Flask:
    flask = Flask("govfn.management.api")
    flask.config["MAX_CONTENT_LENGTH"] = app.config.max_body_bytes
    registry = app.registry
    runtime = app.runtime

    @flask.errorhandler(HttpProblem)
    def problem_response(problem: HttpProblem) -> Response:
        return Response(problem.to_bytes(), problem.status, problem.headers())

    @flask.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        problem = HttpProblem(error.code or 500, error.description or error.name)
        headers = problem.headers()
        if error.code == 405 and error.valid_methods:  # type: ignore[attr-defined]
            headers.append(("Allow", ", ".join(error.valid_methods)))  # type: ignore[attr-defined]
        return Response(problem.to_bytes(), problem.status, headers)

    def plugin_or_404(function_id: str) -> Any:
        plugin = registry.get(function_id)
        if plugin is None:
            raise HttpProblem(404, f"unknown function {function_id!r}", function_id=function_id)
        return plugin

    def run(coro: Any) -> Any:
        if not app.state.try_enter():
            coro.close()
            raise HttpProblem(
                429, "too many invocations in flight", retry_after=app.config.retry_after_s
            )
        try:
            return app.loop.run(coro)
        finally:
            app.state.leave()

    @flask.get("/functions/")
    @flask.get("/functions")
    def catalogue() -> Response:
        descriptors = [plugin.descriptor() for plugin in registry.all()]
        return _json({"functions": descriptors, "count": len(descriptors)})

    @flask.get("/functions/<function_id>")
    def descriptor(function_id: str) -> Response:
        return _json(plugin_or_404(function_id).descriptor())

    @flask.post("/functions/<function_id>/invoke")
    def invoke(function_id: str) -> Response:
        authorize(app.config, request.headers.get("Authorization"), remote_addr=request.remote_addr)
        body = _json_body()
        unknown = set(body) - {"event", "context"}
        if unknown:
            raise HttpProblem(400, f"unknown field(s): {sorted(unknown)}", attribute="body")
        context_values = body.get("context") or {}
        if not isinstance(context_values, dict):
            raise HttpProblem(400, "context must be a JSON object", attribute="context")
        try:
            context = FunctionContext.from_dict(context_values)
        except (TypeError, ValueError) as exc:
            raise HttpProblem(400, str(exc), attribute="context") from None
        result: FunctionResult = run(runtime.invoke(function_id, body.get("event"), context))
        status = 200 if result.success else status_for(result)
        return _json(result_json(result), status)

    @flask.post("/functions/dispatch")
    def dispatch() -> Response:
        authorize(app.config, request.headers.get("Authorization"), remote_addr=request.remote_addr)
        body = _json_body()
        kind = body.get("event_kind")
        if not isinstance(kind, str) or not kind:
            raise HttpProblem(400, "event_kind must be a non-empty string", attribute="event_kind")
        trigger_cid = body.get("trigger_cid") or ""
        if not isinstance(trigger_cid, str):
            raise HttpProblem(400, "trigger_cid must be a string", attribute="trigger_cid")
        results = run(runtime.dispatch(kind, body.get("event_data"), trigger_cid))
        return _json({"event_kind": kind, "results": [result_json(r) for r in results]})

    @flask.get("/functions/<function_id>/manifest")
    def manifest(function_id: str) -> Response:
        plugin = plugin_or_404(function_id)
        image = request.args.get("image")
        if not image:
            raise HttpProblem(400, "query parameter image is required", attribute="image")
        try:
            from govfn.manifest import ManifestOptions, render_yaml
        except ImportError:
            raise HttpProblem(501, "manifest rendering is not available in this build") from None
        namespace = request.args.get("namespace") or None
        broker = request.args.get("broker") or "default"
        try:
            options = ManifestOptions(image=image, namespace=namespace, broker=broker)
            text = render_yaml([plugin], options)
        except (GovfnError, ValueError) as exc:
            field = getattr(exc, "field", None)
            raise HttpProblem(400, str(exc), attribute=str(field or "image")) from None
        return Response(text, 200, {"Content-Type": "application/yaml; charset=utf-8"})

    @flask.get("/metrics")
    def metrics() -> Response:
        backstop = runtime.backstop
        text = app.metrics.render(
            chronicle_failures=backstop.failures if backstop else 0,
            chronicle_pending=backstop.pending if backstop else 0,
            in_flight=app.state.in_flight,
            outbox_depth=app.sink.depth() if app.sink else None,
            sink_failures=app.sink.failures if app.sink else None,
            sink_refused=app.sink.refused if app.sink else None,
        )
        return Response(text, 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    lineage = LineageViews(app.ledger)

    @flask.get("/chronicle/lineage/<cid>")
    def lineage_graph(cid: str) -> Response:
        authorize(
            app.config,
            request.headers.get("Authorization"),
            LINEAGE,
            remote_addr=request.remote_addr,
        )
        response = _json(lineage.graph(cid).to_dict())
        response.headers["Cache-Control"] = "no-store"
        return response

    @flask.get("/chronicle/lineage/<cid>/view")
    def lineage_page(cid: str) -> Response:
        """Without --dev or the token (a browser sends none when it opens a link), the page
        comes without the graph and asks for the token, then fetches the graph with it."""
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
        try:
            authorize(
                app.config,
                request.headers.get("Authorization"),
                LINEAGE,
                remote_addr=request.remote_addr,
            )
        except HttpProblem as problem:
            status, html = lineage.locked_page(cid, problem)
            challenge = [h for h in problem.headers() if h[0] == "WWW-Authenticate"]
            return Response(html, status, headers + challenge)
        status, html = lineage.page(cid)
        return Response(html, status, headers)

    @flask.get("/openapi.json")
    def openapi() -> Response:
        return _json(document)

    routes = [
        (method, openapi_path(rule.rule))
        for rule in flask.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    ]
    document = openapi_document([*app.OWN_ROUTES, *routes])  # refuses undescribed routes
    return flask


def result_json(result: FunctionResult) -> dict[str, Any]:
    """The result as JSON; a handler's exception text stays in the server log."""
    body = result.to_dict()
    if body["error_kind"] == ErrorKind.ERROR:
        body["error"] = "the function failed; see the server log for this invocation id"
    return body


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise HttpProblem(415, "the body must be application/json", attribute="content-type")
    try:
        body = json.loads(request.get_data(cache=False), parse_constant=_refuse)
    except (ValueError, RecursionError):
        raise HttpProblem(400, "the body is not valid JSON", attribute="body") from None
    if not isinstance(body, dict):
        raise HttpProblem(400, "the body must be a JSON object", attribute="body")
    return body


def _refuse(name: str) -> Any:
    raise ValueError(name)


def _json(value: Any, status: int = 200) -> Response:
    text = json.dumps(value, default=_bytes_as_text)
    return Response(text, status, {"Content-Type": "application/json"})


def _bytes_as_text(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"not JSON: {type(value).__name__}")
