"""The management API in-process, through the Werkzeug test client."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from govfn.app import GovfnApp
from govfn.management.openapi import openapi_document

TOKEN = "s3cret-token"


def test_catalogue_and_descriptor(app: GovfnApp) -> None:
    client = app.test_client()
    answer = client.get("/functions/")
    assert answer.status_code == 200
    ids = [d["function_id"] for d in answer.json["functions"]]
    assert ids == sorted(ids) and "echo" in ids and "billing" in ids
    descriptor = client.get("/functions/echo").json
    assert descriptor["spec"] == "GCAP-SPEC-FUNCTION-DESCRIPTOR-0001"
    assert descriptor["emits"] == ["ECHO_REPLIED"]
    missing = client.get("/functions/nope")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"


def test_unknown_routes_and_methods_answer_problems(app: GovfnApp) -> None:
    client = app.test_client()
    assert client.get("/nowhere").status_code == 404
    answer = client.delete("/functions/")
    assert answer.status_code == 405
    assert answer.json["status"] == 405


def test_invoke_returns_the_result(app: GovfnApp) -> None:
    client = app.test_client()
    answer = client.post(
        "/functions/echo/invoke", json={"event": {"a": 1}, "context": {"gsap_context_id": "g"}}
    )
    assert answer.status_code == 200
    result = answer.json
    assert result["success"] is True and result["data"] == {"a": 1}
    assert result["invocation_id"] and result["output_cid"].startswith("b")


def test_invoke_failures_keep_exception_text_out(app: GovfnApp) -> None:
    client = app.test_client()
    answer = client.post("/functions/fail/invoke", json={"event": {}})
    assert answer.status_code == 500
    assert "secret-internal-detail" not in answer.get_data(as_text=True)
    assert client.post("/functions/nope/invoke", json={}).status_code == 404
    answer = client.post("/functions/billing/invoke", json={"event": {"customer_id": "c"}})
    assert answer.status_code == 400 and answer.json["error_kind"] == "gsap_required"


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        ({"context": {"nope": "x"}}, "context"),
        ({"context": "x"}, "context"),
        ({"event": 1, "extra": 2}, "body"),
        ([1], "body"),
    ],
)
def test_invoke_refuses_bad_bodies(app: GovfnApp, body: object, attribute: str) -> None:
    answer = app.test_client().post("/functions/echo/invoke", json=body)
    assert answer.status_code == 400 and answer.json["attribute"] == attribute


def test_invoke_needs_json(app: GovfnApp) -> None:
    client = app.test_client()
    answer = client.post("/functions/echo/invoke", data="x", content_type="text/plain")
    assert answer.status_code == 415
    answer = client.post("/functions/echo/invoke", data="{", content_type="application/json")
    assert answer.status_code == 400


def test_dispatch_runs_every_triggered_function(app: GovfnApp) -> None:
    answer = app.test_client().post(
        "/functions/dispatch", json={"event_kind": "FANOUT", "event_data": {}, "trigger_cid": ""}
    )
    assert answer.status_code == 200
    results = answer.json["results"]
    assert sorted(r["function_id"] for r in results) == ["fan-a", "fan-b"]
    assert len({r["invocation_id"] for r in results}) == 2
    bad = app.test_client().post("/functions/dispatch", json={"event_data": {}})
    assert bad.status_code == 400 and bad.json["attribute"] == "event_kind"


@pytest.mark.parametrize("path", ["/functions/echo/invoke", "/functions/dispatch"])
def test_direct_invoke_is_closed_without_dev_or_token(
    make_app: Callable[..., GovfnApp], path: str
) -> None:
    body = {"event": {}} if path.endswith("invoke") else {"event_kind": "ECHO_REQUESTED"}
    closed = make_app().test_client()
    assert closed.post(path, json=body).status_code == 401
    answer = closed.post(path, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 403  # no token configured: nobody gets in

    guarded = make_app(api_token=TOKEN).test_client()
    answer = guarded.post(path, json=body)
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert guarded.post(path, json=body, headers={"Authorization": "Basic eDp5"}).status_code == 401
    wrong = guarded.post(path, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and TOKEN not in wrong.get_data(as_text=True)
    right = guarded.post(path, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200


@pytest.mark.parametrize("path", ["/functions/echo/invoke", "/functions/dispatch"])
def test_dev_opens_direct_invoke_to_loopback_clients_only(
    make_app: Callable[..., GovfnApp], path: str
) -> None:
    body = {"event": {}} if path.endswith("invoke") else {"event_kind": "ECHO_REQUESTED"}
    client = make_app(dev=True).test_client()
    for peer in ("127.0.0.1", "::1", "127.0.0.9"):
        assert client.post(path, json=body, environ_base={"REMOTE_ADDR": peer}).status_code == 200
    for peer in ("192.0.2.7", "2001:db8::1", "10.0.0.1"):
        answer = client.post(path, json=body, environ_base={"REMOTE_ADDR": peer})
        assert answer.status_code == 401, peer  # as without --dev: a token is needed
    guarded = make_app(dev=True, api_token=TOKEN).test_client()
    remote = {"REMOTE_ADDR": "192.0.2.7"}
    answer = guarded.post(
        path, json=body, environ_base=remote, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 200


def test_manifest_needs_an_image(app: GovfnApp) -> None:
    answer = app.test_client().get("/functions/echo/manifest")
    assert answer.status_code == 400 and answer.json["attribute"] == "image"
    assert app.test_client().get("/functions/nope/manifest?image=x").status_code == 404


def test_manifest_is_501_while_the_manifest_package_is_missing(
    app: GovfnApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "govfn.manifest", None)
    answer = app.test_client().get("/functions/echo/manifest?image=registry.example/echo:1")
    assert answer.status_code == 501
    assert answer.headers["Content-Type"] == "application/problem+json"


def test_manifest_renders_yaml_when_available(app: GovfnApp) -> None:
    pytest.importorskip("govfn.manifest")
    answer = app.test_client().get(
        "/functions/echo/manifest?image=registry.example/echo:1&namespace=fn&broker=main"
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"].startswith("application/yaml")
    text = answer.get_data(as_text=True)
    assert "registry.example/echo:1" in text and "kind: Trigger" in text
    assert "namespace: fn" in text and "broker: main" in text


def test_health_endpoints(app: GovfnApp) -> None:
    client = app.test_client()
    assert client.get("/health").json["status"] == "ok"
    assert client.get("/health/liveness").status_code == 200
    assert client.get("/health/readiness").json == {
        "ready": True,
        "starting": False,
        "draining": False,
        "dependencies": True,
    }


def test_readiness_is_false_while_starting(app: GovfnApp) -> None:
    app.state.starting = True
    assert app.test_client().get("/health/readiness").status_code == 503


def test_metrics_are_prometheus_text(app: GovfnApp) -> None:
    answer = app.test_client().get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = answer.get_data(as_text=True)
    for name in (
        "govfn_invocations_total",
        "govfn_invocation_duration_seconds",
        "govfn_chronicle_emit_failures_total",
    ):
        assert f"# TYPE {name} " in text


def served_routes(app: GovfnApp) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route: the Flask URL map's and the app's own."""
    flask_app = app.management
    rules = flask_app.url_map.iter_rules()  # type: ignore[attr-defined]
    routes = {
        (method, re.sub(r"<(\w+:)?(\w+)>", r"{\2}", rule.rule))
        for rule in rules
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    for method, path in GovfnApp.OWN_ROUTES:  # each is one that the app routes itself
        assert app.route(method, path.replace("{function_id}", "echo"))[0] in ("receiver", "health")
    return routes | set(GovfnApp.OWN_ROUTES)


def test_openapi_describes_every_route(app: GovfnApp) -> None:
    document = app.test_client().get("/openapi.json").json
    assert document["openapi"].startswith("3.1")
    routes = served_routes(app)
    assert len(routes) == 16
    assert set(document["paths"]) == {path for _, path in routes}
    described = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert described == routes
    refs = _refs(document)
    for ref in refs:
        section, kind, name = ref.removeprefix("#/").split("/")
        assert name in document[section][kind], ref


def test_openapi_document_validates_as_openapi_3_1(app: GovfnApp) -> None:
    document = app.test_client().get("/openapi.json").json
    OpenAPIV31SpecValidator(document).validate()  # raises on the first error


def test_a_route_without_a_description_is_refused(app: GovfnApp) -> None:
    routes = sorted(served_routes(app))
    with pytest.raises(ValueError, match=r"undescribed \['GET /functions/\{function_id\}/logs'\]"):
        openapi_document([*routes, ("GET", "/functions/{function_id}/logs")])
    with pytest.raises(ValueError, match=r"unrouted \['GET /metrics'\]"):
        openapi_document([route for route in routes if route != ("GET", "/metrics")])


def _refs(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if "$ref" in node else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()
