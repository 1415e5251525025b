"""deploy/: the committed manifests equal a fresh render; the Dockerfile keeps its promises."""

from __future__ import annotations

import re

import yaml
from govfn_manifest_schemas import schema_errors

from conftest import REPO
from govfn.manifest import ManifestOptions, render_yaml
from govfn.registry import FunctionRegistry

DEPLOY = REPO / "deploy"
# The command in deploy/README.md.
COMMITTED = ManifestOptions(image="registry.example.com/govfn:0.1.0", namespace="govfn")


def test_committed_functions_equal_a_fresh_render(builtins: FunctionRegistry) -> None:
    committed = (DEPLOY / "knative" / "functions.yaml").read_text(encoding="utf-8")
    assert committed == render_yaml(builtins, COMMITTED), (
        "deploy/knative/functions.yaml is stale: regenerate it with the command in deploy/README.md"
    )
    for obj in yaml.safe_load_all(committed):
        assert schema_errors(obj) == []


def test_readme_command_matches_the_test() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "--image registry.example.com/govfn:0.1.0" in readme
    assert "--namespace govfn -o deploy/knative/functions.yaml" in readme


def test_broker_matches_the_triggers() -> None:
    broker = yaml.safe_load((DEPLOY / "knative" / "broker.yaml").read_text(encoding="utf-8"))
    triggers = [
        doc
        for doc in yaml.safe_load_all((DEPLOY / "knative" / "functions.yaml").read_text())
        if doc["kind"] == "Trigger"
    ]
    assert triggers
    for trigger in triggers:
        assert trigger["spec"]["broker"] == broker["metadata"]["name"]
        assert trigger["metadata"]["namespace"] == broker["metadata"]["namespace"]


def test_each_service_sends_its_records_to_the_committed_broker() -> None:
    broker = yaml.safe_load((DEPLOY / "knative" / "broker.yaml").read_text(encoding="utf-8"))
    documents = list(yaml.safe_load_all((DEPLOY / "knative" / "functions.yaml").read_text()))
    services = sorted(d["metadata"]["name"] for d in documents if d["kind"] == "Service")
    bindings = [d for d in documents if d["kind"] == "SinkBinding"]
    assert services and sorted(b["spec"]["subject"]["name"] for b in bindings) == services
    for binding in bindings:
        assert binding["spec"]["sink"]["ref"] == {
            "apiVersion": broker["apiVersion"],
            "kind": broker["kind"],
            "name": broker["metadata"]["name"],
            "namespace": broker["metadata"]["namespace"],
        }
        assert binding["metadata"]["namespace"] == broker["metadata"]["namespace"]


def test_dockerfile_runs_govfn_serve_as_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert re.search(r'^ENTRYPOINT \["govfn"\]\s*$', text, re.M)
    assert re.search(r'^CMD \["serve"\]\s*$', text, re.M)
    assert "PORT=8080" in text  # the default; Knative overrides it and `govfn serve` reads it
    assert "pip install --no-cache-dir ." in text
