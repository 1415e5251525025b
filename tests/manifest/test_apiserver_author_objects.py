"""What function authors declare in code, on the real kube-apiserver with Knative's CRDs:
a function's own delivery policy in its Triggers, and the EventTypes of typed functions
(eventing.knative.dev/v1beta2, the CRD's storage version), through `kubectl apply
--server-side --validate=strict` and through `govfn apply`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from govfn.cli.group import cli

from support.kube_apiserver import KubeApiServer

pytestmark = pytest.mark.slow
MODULES = ["--functions", "govfn_manifest_typed", "--functions", "govfn_manifest_delivery"]
IMAGE = ["--image", "registry.example/shop:1"]


def event_type(admin: Any, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = admin.get_namespaced_custom_object(
        "eventing.knative.dev", "v1beta2", namespace, "eventtypes", name
    )
    return found


def trigger(admin: Any, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = admin.get_namespaced_custom_object(
        "eventing.knative.dev", "v1", namespace, "triggers", name
    )
    return found


def test_kubectl_applies_declared_delivery_and_event_types_under_strict_validation(
    kube_apiserver: KubeApiServer, kube_admin: Any, kube_namespace: str
) -> None:
    import govfn_manifest_typed as typed

    manifests = CliRunner().invoke(
        cli,
        ["manifests", *MODULES, *IMAGE, "--namespace", kube_namespace, "--event-types"],
        catch_exceptions=False,
    )
    assert manifests.exit_code == 0, manifests.output
    side = ("apply", "--server-side", "--field-manager=govfn", "--validate=strict", "-f", "-")
    dry = kube_apiserver.kubectl(*side, "--dry-run=server", input=manifests.output)
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr == ""  # not even a warning about an unknown field
    real = kube_apiserver.kubectl(*side, input=manifests.output)
    assert real.returncode == 0, real.stderr
    assert "eventtype.eventing.knative.dev/ship-order-paid serverside-applied" in real.stdout
    stored = event_type(kube_admin, kube_namespace, "ship-order-resent")
    assert stored["spec"]["type"] == "ORDER_RESENT"
    assert stored["spec"]["reference"] == {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "name": "default",
        "namespace": kube_namespace,
    }
    descriptor = typed.ship.__govfn_plugin__.descriptor()  # type: ignore[attr-defined]
    assert json.loads(stored["spec"]["schemaData"]) == descriptor["event_schema"]
    delivery = trigger(kube_admin, kube_namespace, "payments-payment-requested")["spec"]["delivery"]
    assert delivery == {
        "deadLetterSink": {
            "ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "dlq"}
        },
        "retry": 5,
        "backoffPolicy": "exponential",
        "backoffDelay": "PT0.5S",
        "timeout": "PT10S",
    }
    assert "delivery" not in trigger(kube_admin, kube_namespace, "audit-payment-settled")["spec"]


def test_govfn_apply_creates_the_event_types(
    kube_apiserver: KubeApiServer, kube_admin: Any, kube_namespace: str, tmp_path: Path
) -> None:
    kubeconfig = kube_apiserver.write_kubeconfig(tmp_path / "kubeconfig", namespace=kube_namespace)
    args = ["apply", *MODULES, *IMAGE, "--event-types", "--retry", "1"]
    result = CliRunner().invoke(
        cli, [*args, "--kubeconfig", str(kubeconfig)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "eventtype/ship-order-paid applied" in result.output
    stored = event_type(kube_admin, kube_namespace, "ship-order-paid")
    assert stored["metadata"]["managedFields"][0]["manager"] == "govfn"
    assert stored["metadata"]["labels"]["app.kubernetes.io/component"] == "event-type"
    # the operator's --retry overrides the function's 5, the rest of its policy stays
    delivery = trigger(kube_admin, kube_namespace, "payments-payment-retried")["spec"]["delivery"]
    assert (delivery["retry"], delivery["timeout"]) == (1, "PT10S")
