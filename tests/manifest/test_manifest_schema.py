"""Every generated object validates against the vendored CRD schemas made strict."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from govfn_manifest_schemas import CRDS, schema_errors

from conftest import MakePlugin
from govfn.manifest import ManifestOptions, render_all
from govfn.registry import FunctionRegistry

REPO = Path(__file__).parent.parent.parent

FULL_OPTIONS = ManifestOptions(
    image="registry.example/govfn@sha256:" + "a" * 64,
    namespace="functions",
    broker="events",
    app="shop",
    name_prefix="shop-",
    env={"LOG_LEVEL": "debug", "EMPTY": ""},
    min_scale=1,
    max_scale=10,
    target_concurrency=50,
    container_concurrency=100,
    timeout_seconds=600,
    requests={"cpu": "250m", "memory": "256Mi", "ephemeral-storage": "1Gi"},
    limits={"cpu": "2", "memory": "1Gi"},
    service_account="functions",
    visibility="public",
    delivery={
        "retry": 5,
        "backoffPolicy": "linear",
        "backoffDelay": "PT1S",
        "deadLetterSink": "broker:dead-letters",
        "timeout": "PT30S",
    },
    filters={"source": "/shop", "subject": ""},
    labels={"team": "payments"},
    annotations={"example.com/owner": "payments"},
)


def test_crds_vendored_unmodified() -> None:
    readme = (CRDS / "README.md").read_text(encoding="utf-8")
    digests = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    )
    assert set(digests) == {
        "serving-service.yaml",
        "eventing-trigger.yaml",
        "eventing-broker.yaml",
        "eventing-sinkbinding.yaml",
        "eventing-eventtype.yaml",
    }
    for name, digest in digests.items():
        assert hashlib.sha256((CRDS / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize(
    "options", [ManifestOptions(image="img"), FULL_OPTIONS], ids=["defaults", "full"]
)
def test_rendered_objects_validate(
    builtins: FunctionRegistry, make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    plugins = [*builtins.all(), make_plugin("x" * 63, triggers=("A", "b.c", "D_E"))]
    objects = render_all(plugins, options)
    assert len(objects) == 2 * 2 + 4 + 3  # Services, Triggers, SinkBindings
    for obj in objects:
        assert schema_errors(obj) == [], obj["metadata"]["name"]


def _service(options: ManifestOptions, make_plugin: MakePlugin) -> dict[str, Any]:
    return render_all([make_plugin("strict")], options)[0]


def test_strict_schema_catches_a_typo(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    service = _service(options, make_plugin)
    service["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    assert any("imagee" in error for error in schema_errors(service))


def test_strict_schema_refuses_float_quantity_and_int_annotation(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    service = _service(options, make_plugin)
    service["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 0.5
    service["spec"]["template"]["metadata"]["annotations"] = {
        "autoscaling.knative.dev/min-scale": 1
    }
    errors = schema_errors(service)
    assert len(errors) == 2, errors


def test_trigger_spec_preserves_unknown_fields_so_our_validator_must(
    options: ManifestOptions, make_plugin: MakePlugin
) -> None:
    trigger = render_all([make_plugin("loose")], options)[1]
    trigger["spec"]["fliters"] = []
    assert schema_errors(trigger) == []  # the CRD says so; the README warns about it


def test_committed_broker_validates() -> None:
    broker = yaml.safe_load((REPO / "deploy" / "knative" / "broker.yaml").read_text())
    assert broker["kind"] == "Broker"
    assert schema_errors(broker) == []
