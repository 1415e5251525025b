"""The rendered Service and Triggers: what issue 4 asks of each field."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from conftest import MakePlugin
from govfn.manifest import ManifestError, ManifestOptions, render_all, render_function
from govfn.registry import FunctionRegistry


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def container(service: dict[str, Any]) -> dict[str, Any]:
    containers = service["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_one_service_and_one_trigger_per_type(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    plugin = make_plugin("orders", triggers=("ORDER_PLACED", "order.retried"))
    objects = render_function(plugin, options)
    assert [obj["kind"] for obj in objects] == ["Service", "Trigger", "Trigger", "SinkBinding"]
    assert objects[0]["apiVersion"] == "serving.knative.dev/v1"
    assert {obj["apiVersion"] for obj in objects[1:3]} == {"eventing.knative.dev/v1"}
    assert objects[3]["apiVersion"] == "sources.knative.dev/v1"
    assert [t["spec"]["filter"]["attributes"]["type"] for t in objects[1:3]] == [
        "ORDER_PLACED",
        "order.retried",
    ]


def test_container_runs_single_function_mode(
    builtins: FunctionRegistry, options: ManifestOptions
) -> None:
    plugin = builtins.get("billing")
    assert plugin is not None
    spec = container(render_function(plugin, options)[0])
    assert spec["image"] == options.image
    assert [*spec["command"], *spec["args"]] == [
        "govfn",
        "serve",
        "--function",
        "billing",
        "--functions",
        "govfn.functions.billing",
        "--single-process",
    ]
    assert spec["ports"] == [{"name": "http1", "containerPort": 8080}]
    assert spec["readinessProbe"] == {"httpGet": {"path": "/health/readiness"}}
    assert spec["livenessProbe"] == {"httpGet": {"path": "/health/liveness"}}


def test_ledger_lives_in_an_empty_dir(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    service = render_function(make_plugin("ledgered"), options)[0]
    spec = container(service)
    volumes = service["spec"]["template"]["spec"]["volumes"]
    assert volumes == [
        {"name": "ledger", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "tmp", "emptyDir": {}},
    ]
    mount = spec["volumeMounts"][0]
    assert mount["name"] == "ledger"
    env = {item["name"]: item["value"] for item in spec["env"]}
    assert env["GOVFN_CHRONICLE"].startswith(mount["mountPath"] + "/")
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True


def test_restricted_pod_security_standard(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    context = container(render_function(make_plugin("pss"), options)[0])["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_resources_default_and_configurable(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    spec = container(render_function(make_plugin("res"), options)[0])
    assert spec["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "256Mi"},
    }
    custom = replace(options, requests={"cpu": "50m"}, limits={"memory": "1Gi"})
    spec = container(render_function(make_plugin("res"), custom)[0])
    assert spec["resources"] == {"requests": {"cpu": "50m"}, "limits": {"memory": "1Gi"}}


def test_autoscaling_annotations_only_on_the_template(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    scaled = replace(
        options,
        min_scale=1,
        max_scale=5,
        target_concurrency=20,
        container_concurrency=50,
        timeout_seconds=120,
    )
    service = render_function(make_plugin("scaled"), scaled)[0]
    template = service["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "autoscaling.knative.dev/max-scale": "5",
        "autoscaling.knative.dev/min-scale": "1",
        "autoscaling.knative.dev/target": "20",
    }
    assert not any(k.startswith("autoscaling.") for k in service["metadata"]["annotations"])
    assert template["spec"]["containerConcurrency"] == 50
    assert template["spec"]["timeoutSeconds"] == 120


def test_visibility_cluster_local_unless_public(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    label = "networking.knative.dev/visibility"
    service = render_function(make_plugin("vis"), options)[0]
    assert service["metadata"]["labels"][label] == "cluster-local"
    public = render_function(make_plugin("vis"), replace(options, visibility="public"))[0]
    assert label not in public["metadata"]["labels"]


def test_labels_and_descriptor_annotation(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    plugin = make_plugin("labelled", version="2.1.0+build.7")
    objects = render_function(plugin, replace(options, app="shop", labels={"team": "a"}))
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "labelled"
        assert labels["app.kubernetes.io/part-of"] == "shop"
        assert labels["app.kubernetes.io/managed-by"] == "govfn"
        assert labels["app.kubernetes.io/version"] == "2.1.0_build.7"  # '+' is not allowed
        assert labels["team"] == "a"
    cid = plugin.descriptor()["descriptor_cid"]
    assert objects[0]["metadata"]["annotations"]["govfn.dev/descriptor-cid"] == cid


def test_trigger_spec(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    delivered = replace(
        options,
        broker="events",
        filters={"source": "/shop"},
        delivery={
            "retry": 3,
            "backoffPolicy": "exponential",
            "backoffDelay": "PT0.5S",
            "deadLetterSink": "ksvc:dead-letters",
            "timeout": "PT10S",
        },
    )
    service, trigger, _binding = render_function(make_plugin("shop"), delivered)
    spec = trigger["spec"]
    assert spec["broker"] == "events"
    assert spec["filter"] == {"attributes": {"source": "/shop", "type": "THING_HAPPENED"}}
    assert spec["subscriber"] == {
        "ref": {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "name": service["metadata"]["name"],
            "namespace": "functions",
        }
    }
    assert spec["delivery"] == {
        "deadLetterSink": {
            "ref": {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Service",
                "name": "dead-letters",
            }
        },
        "retry": 3,
        "backoffPolicy": "exponential",
        "backoffDelay": "PT0.5S",
        "timeout": "PT10S",
    }


def test_no_delivery_means_the_broker_s(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    trigger = render_function(make_plugin("plain"), options)[1]
    assert "delivery" not in trigger["spec"]


def test_dead_letter_sink_uri(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    sink = replace(options, delivery={"deadLetterSink": "https://dlq.example/events"})
    trigger = render_function(make_plugin("dls"), sink)[1]
    assert trigger["spec"]["delivery"] == {"deadLetterSink": {"uri": "https://dlq.example/events"}}


def test_namespace_omitted_when_not_given(make_plugin: MakePlugin) -> None:
    objects = render_function(make_plugin("nons"), ManifestOptions(image="img"))
    assert all("namespace" not in obj["metadata"] for obj in objects)
    assert "namespace" not in objects[1]["spec"]["subscriber"]["ref"]


def test_user_env_is_sorted_after_defaults_merge(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    spec = container(
        render_function(make_plugin("env"), replace(options, env={"Z": "1", "A": "2"}))[0]
    )
    assert [item["name"] for item in spec["env"]] == ["A", "GOVFN_CHRONICLE", "Z"]


def test_render_all_sorts_by_function_id(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    plugins = [make_plugin("zeta"), make_plugin("alpha")]
    names = [obj["metadata"]["name"] for obj in render_all(plugins, options)]
    assert names == [
        "alpha",
        "alpha-thing-happened",
        "alpha-chronicle",
        "zeta",
        "zeta-thing-happened",
        "zeta-chronicle",
    ]


def test_image_is_required() -> None:
    with pytest.raises(ManifestError, match=r"^image: "):
        ManifestOptions(image="")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"visibility": "internal"}, "visibility"),
        ({"min_scale": "1"}, "min_scale"),
        ({"min_scale": True}, "min_scale"),
        ({"env": {"A": 1}}, "env[A]"),
        ({"requests": {"cpu": 0.1}}, "requests[cpu]"),
        ({"delivery": {"backoffPolicy": "random"}}, "delivery.backoffPolicy"),
        ({"delivery": {"deadLetterSink": "ftp://x"}}, "delivery.deadLetterSink"),
        ({"delivery": {"retries": 3}}, "delivery.retries"),
        ({"broker": ""}, "broker"),
    ],
)
def test_option_refusals_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        ManifestOptions(image="img", **changes)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
