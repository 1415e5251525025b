"""`govfn manifests --event-types`: a Knative EventType (eventing.knative.dev/v1beta2) per
trigger type of each typed function, its `schemaData` the JSON Schema of the handler's
event type; checked against the vendored CRD, read by the real kubectl, applied by
`govfn apply`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from govfn_manifest_apiserver import KUBECTL_APPLY, ApiServer, ApiServerState, run_kubectl
from govfn_manifest_schemas import schema_errors

from conftest import HERE
from govfn.cli.group import cli
from govfn.manifest import ManifestError, validate_object

FUNCTIONS = ["--functions", "govfn_manifest_typed", "--image", "registry.example/ship:1"]
EVENT_TYPES = ("eventing.knative.dev", "functions", "eventtypes")


def run(command: str, *args: str, cwd: Path = HERE) -> Result:
    old = Path.cwd()
    os.chdir(cwd)  # no config file but the test's own
    try:
        return CliRunner().invoke(cli, [command, *FUNCTIONS, *args], catch_exceptions=False)
    finally:
        os.chdir(old)


def rendered(*args: str, cwd: Path = HERE) -> list[dict[str, Any]]:
    result = run("manifests", *args, cwd=cwd)
    assert result.exit_code == 0, result.output
    return [doc for doc in yaml.safe_load_all(result.output) if doc]


def event_types(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "EventType"}


def test_one_event_type_per_trigger_type_of_each_typed_function() -> None:
    import govfn_manifest_typed as samples

    objects = rendered("--event-types", "--namespace", "shop", "--broker", "orders")
    found = event_types(objects)
    assert sorted(found) == ["ship-order-paid", "ship-order-resent"]  # notify is untyped
    paid = found["ship-order-paid"]
    assert paid["apiVersion"] == "eventing.knative.dev/v1beta2"
    assert paid["metadata"]["namespace"] == "shop"
    assert paid["metadata"]["labels"]["app.kubernetes.io/component"] == "event-type"
    assert paid["metadata"]["annotations"]["govfn.dev/function"] == "ship"
    spec = paid["spec"]
    assert spec["type"] == "ORDER_PAID"
    assert spec["reference"] == {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "name": "orders",
        "namespace": "shop",
    }
    assert spec["description"] == "ORDER_PAID as function ship reads it (Shipment)"
    descriptor = samples.ship.__govfn_plugin__.descriptor()  # type: ignore[attr-defined]
    assert json.loads(spec["schemaData"]) == descriptor["event_schema"]
    assert json.loads(spec["schemaData"])["required"] == ["shipment_id"]
    for obj in objects:
        assert schema_errors(obj) == [], obj["metadata"]["name"]
    # the Triggers are what they were without the flag
    without = rendered("--namespace", "shop", "--broker", "orders")
    assert event_types(without) == {}
    assert [o for o in objects if o["kind"] != "EventType"] == without


def test_the_config_file_may_ask_for_them(tmp_path: Path) -> None:
    (tmp_path / "govfn.yaml").write_text("event-types: true\n")
    assert sorted(event_types(rendered(cwd=tmp_path))) == ["ship-order-paid", "ship-order-resent"]
    (tmp_path / "govfn.yaml").write_text("event-types: 'yes'\n")
    result = run("manifests", cwd=tmp_path)
    assert result.exit_code == 2
    assert "event_types: must be true or false, got 'yes'" in result.output


def test_helm_values_refuse_them_rather_than_drop_them() -> None:
    result = run("manifests", "--event-types", "--format", "helm-values")
    assert result.exit_code == 2
    assert "event_types: the Helm chart renders no EventTypes" in result.output


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda spec: spec.pop("type"), "spec.type: is required"),
        (lambda spec: spec.update(type=""), "spec.type: is required"),
        (lambda spec: spec.update(schemaData={"type": "object"}), "spec.schemaData"),
        (lambda spec: spec["reference"].pop("name"), "spec.reference.name: is required"),
    ],
)
def test_what_knative_refuses_is_refused(change: Any, field: str) -> None:
    [event_type, *_] = event_types(rendered("--event-types")).values()
    validate_object(event_type)
    change(event_type["spec"])
    with pytest.raises(ManifestError) as caught:
        validate_object(event_type)
    assert field in str(caught.value)


def test_kubectl_applies_them(helm: Path, tmp_path: Path) -> None:
    """The real kubectl finds eventtypes at eventing.knative.dev/v1beta2 by discovery and
    sends them to the double, which checks them against the vendored CRD made strict."""
    kubectl = helm.parent / "kubectl"
    text = run("manifests", "--event-types").output
    server = ApiServer(ApiServerState(token=None)).start()
    try:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        applied = run_kubectl(kubectl, kubeconfig, *KUBECTL_APPLY, stdin=text)
        assert applied.returncode == 0, applied.stderr
        assert "eventtype.eventing.knative.dev/ship-order-paid serverside-applied" in applied.stdout
        stored = server.state.objects[(*EVENT_TYPES, "ship-order-resent")]
        assert stored["spec"]["type"] == "ORDER_RESENT"
        listed = run_kubectl(kubectl, kubeconfig, "get", "eventtypes", "-o", "name")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split() == [
            "eventtype.eventing.knative.dev/ship-order-paid",
            "eventtype.eventing.knative.dev/ship-order-resent",
        ]
    finally:
        server.stop()


def test_govfn_apply_applies_them(apiserver: ApiServer, kubeconfig: Path) -> None:
    result = run("apply", "--event-types", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    assert "eventtype/ship-order-paid applied" in result.output
    assert (*EVENT_TYPES, "ship-order-paid") in apiserver.state.objects
    assert "/apis/eventing.knative.dev/v1beta2" in [r.path for r in apiserver.state.requests]
