"""A function's own delivery policy (`govfn.Delivery`): checked when it is defined, written
into its Triggers' `spec.delivery`, overridden field by field by the operator's flags and
config file, carried by the Helm values, read by the real kubectl and helm."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from govfn_manifest_apiserver import KUBECTL_APPLY, ApiServer, ApiServerState, run_kubectl
from govfn_manifest_schemas import schema_errors

from conftest import HERE, REPO
from govfn import Delivery, FunctionContext, governed_function
from govfn.cli.group import cli
from govfn.registry import FunctionRegistry

CHART = REPO / "charts" / "govfn"
FUNCTIONS = ["--functions", "govfn_manifest_delivery", "--image", "registry.example/pay:1"]
DLQ_BROKER = {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "dlq"}}
DECLARED = {
    "deadLetterSink": DLQ_BROKER,
    "retry": 5,
    "backoffPolicy": "exponential",
    "backoffDelay": "PT0.5S",
    "timeout": "PT10S",
}


def manifests(*args: str, cwd: Path = HERE) -> str:
    old = Path.cwd()
    os.chdir(cwd)  # no config file of the project's own is read
    try:
        result = CliRunner().invoke(cli, ["manifests", *FUNCTIONS, *args], catch_exceptions=False)
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    return result.output


def deliveries(text: str) -> dict[str, Any]:
    """Trigger name -> its spec.delivery (None when it has none)."""
    return {
        doc["metadata"]["name"]: doc["spec"].get("delivery")
        for doc in yaml.safe_load_all(text)
        if doc and doc["kind"] == "Trigger"
    }


def test_the_declared_policy_reaches_every_trigger_of_its_function() -> None:
    assert deliveries(manifests()) == {
        "payments-payment-requested": DECLARED,
        "payments-payment-retried": DECLARED,
        "refunds-refund-requested": {"deadLetterSink": {"uri": "https://dlq.example/refunds"}},
        "audit-payment-settled": None,  # the Broker's delivery, as a whole
    }


def test_broker_dlq_is_a_broker_in_the_trigger_s_own_namespace() -> None:
    """No namespace in the reference: Knative defaults it to the Trigger's."""
    found = deliveries(manifests("--namespace", "shop"))
    assert found["payments-payment-requested"]["deadLetterSink"] == DLQ_BROKER


def test_flags_override_field_by_field() -> None:
    found = deliveries(manifests("--retry", "2", "--dead-letter-sink", "https://ops.example/dl"))
    assert found["payments-payment-requested"] == {
        **DECLARED,
        "retry": 2,
        "deadLetterSink": {"uri": "https://ops.example/dl"},
    }
    assert found["refunds-refund-requested"] == {
        "retry": 2,
        "deadLetterSink": {"uri": "https://ops.example/dl"},
    }
    assert found["audit-payment-settled"] == found["refunds-refund-requested"]


def test_the_config_file_overrides_too_and_flags_win_over_it(tmp_path: Path) -> None:
    (tmp_path / "govfn.yaml").write_text("delivery: {backoffPolicy: linear, retry: 1}\n")
    found = deliveries(manifests("--retry", "3", cwd=tmp_path))
    assert found["payments-payment-requested"] == {
        **DECLARED,
        "backoffPolicy": "linear",
        "retry": 3,
    }


def test_a_bad_flag_is_refused_as_before_over_a_declared_policy() -> None:
    result = CliRunner().invoke(
        cli, ["manifests", *FUNCTIONS, "--backoff-delay", "5s"], catch_exceptions=False
    )
    assert result.exit_code == 2
    assert "spec.delivery.backoffDelay: '5s' is not an ISO-8601 duration" in result.output


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"retry": -1}, "retry must be 0 or more, got -1"),
        ({"retry": True}, "retry must be an integer, got True"),
        ({"retry": "5"}, "retry must be an integer, got '5'"),
        ({"backoff_policy": "random"}, "backoff_policy 'random' is not one of linear"),
        ({"backoff_delay": "5s"}, "backoff_delay '5s' is not an ISO 8601 duration"),
        ({"timeout": "PT"}, "timeout 'PT' is not an ISO 8601 duration"),
        ({"timeout": 10}, "timeout 10 is not an ISO 8601 duration"),
        ({"dead_letter_sink": "nowhere"}, "'nowhere' is neither an http(s) URL nor one of"),
        ({"dead_letter_sink": "broker:"}, "'broker:' is neither"),
        ({"dead_letter_sink": "broker:DLQ"}, "'DLQ' is not a Kubernetes object name"),
        ({"dead_letter_sink": "queue:dlq"}, "'queue:dlq' is neither"),
    ],
)
def test_a_bad_policy_fails_where_it_is_written(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Delivery(**values)
    assert message in str(caught.value)


def test_the_decorator_takes_only_a_delivery(fresh_default_registry: FunctionRegistry) -> None:
    with pytest.raises(ValueError, match=r"delivery must be a govfn\.Delivery, got"):

        @governed_function("bad", trigger_events=["X"], delivery={"retry": 1})  # type: ignore[arg-type]
        def bad(event: Any, context: FunctionContext) -> None:
            pass

    assert "bad" not in fresh_default_registry


def test_the_descriptor_names_the_declared_policy() -> None:
    from importlib.resources import files

    import govfn_manifest_delivery as samples

    schema = yaml.safe_load(
        files("govfn").joinpath("schemas/function-descriptor.schema.json").read_text()
    )
    payments = samples.payments.__govfn_plugin__.descriptor()  # type: ignore[attr-defined]
    assert payments["delivery"] == {
        "deadLetterSink": "broker:dlq",
        "retry": 5,
        "backoffPolicy": "exponential",
        "backoffDelay": "PT0.5S",
        "timeout": "PT10S",
    }
    jsonschema.Draft202012Validator(schema).validate(payments)
    audit = samples.audit.__govfn_plugin__.descriptor()  # type: ignore[attr-defined]
    assert "delivery" not in audit  # a function without one keeps its descriptor CID
    jsonschema.Draft202012Validator(schema).validate(audit)


def helm_run(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=60, cwd=HERE)


def by_name(text: str) -> dict[tuple[str, str], Any]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(text) if d}


@pytest.mark.parametrize(
    "flags",
    [[], ["--retry", "2", "--dead-letter-sink", "ksvc:ops"], ["--namespace", "shop"]],
    ids=["declared", "partly-overridden", "namespaced"],
)
def test_helm_template_renders_the_same_deliveries(
    helm: Path, tmp_path: Path, flags: list[str]
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(manifests(*flags, "--format", "helm-values"))
    lint = helm_run(helm, "lint", "--strict", str(CHART), "-f", str(values))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = helm_run(helm, "template", "govfn", str(CHART), "-f", str(values))
    assert rendered.returncode == 0, rendered.stderr
    from_helm, from_govfn = by_name(rendered.stdout), by_name(manifests(*flags))
    assert from_helm == from_govfn
    assert deliveries(rendered.stdout)["payments-payment-requested"]["backoffDelay"] == "PT0.5S"
    for obj in from_helm.values():
        assert schema_errors(obj) == []


def test_the_chart_refuses_a_bad_declared_policy(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(manifests("--format", "helm-values"))
    document = yaml.safe_load(values.read_text())
    document["functions"][1]["delivery"]["backoffPolicy"] = "random"
    values.write_text(yaml.safe_dump(document))
    refused = helm_run(helm, "template", "govfn", str(CHART), "-f", str(values))
    assert refused.returncode != 0
    assert "/functions/1/delivery/backoffPolicy" in refused.stderr


def test_kubectl_applies_the_declared_policy(helm: Path, tmp_path: Path) -> None:
    """The real kubectl sends the Triggers to the API-server double, which checks them
    against Knative's Trigger CRD made strict, and keeps them as sent."""
    kubectl = helm.parent / "kubectl"
    server = ApiServer(ApiServerState(token=None)).start()
    try:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        applied = run_kubectl(kubectl, kubeconfig, *KUBECTL_APPLY, stdin=manifests())
        assert applied.returncode == 0, applied.stderr
        stored = server.state.objects[
            ("eventing.knative.dev", "functions", "triggers", "payments-payment-retried")
        ]
        assert stored["spec"]["delivery"] == DECLARED
    finally:
        server.stop()
