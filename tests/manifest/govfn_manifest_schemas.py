"""The vendored Knative CRD schemas, made strict the way the apiserver's strict field
validation behaves: `additionalProperties: false` on every object that lists `properties`
and does not carry `x-kubernetes-preserve-unknown-fields`."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRDS = Path(__file__).parent / "crds"
FILES = {
    ("serving.knative.dev/v1", "Service"): "serving-service.yaml",
    ("eventing.knative.dev/v1", "Trigger"): "eventing-trigger.yaml",
    ("eventing.knative.dev/v1", "Broker"): "eventing-broker.yaml",
    ("sources.knative.dev/v1", "SinkBinding"): "eventing-sinkbinding.yaml",
    ("eventing.knative.dev/v1beta2", "EventType"): "eventing-eventtype.yaml",
}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
    "required": ["name"],
}


def strict(schema: Any) -> Any:
    """A copy of `schema` with `additionalProperties: false` where the apiserver would prune."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in schema
    ):
        result["additionalProperties"] = False
    return result


@functools.cache
def crd(api_version: str, kind: str) -> dict[str, Any]:
    text = (CRDS / FILES[(api_version, kind)]).read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


@functools.cache
def validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    versions = crd(api_version, kind)["spec"]["versions"]
    [version] = [v for v in versions if v["name"] == api_version.split("/")[1] and v["served"]]
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
    # Every object has these; the Trigger, Broker and SinkBinding schemas do not list them.
    schema["properties"].setdefault("apiVersion", {"type": "string"})
    schema["properties"].setdefault("kind", {"type": "string"})
    schema["properties"]["metadata"] = OBJECT_META
    schema["required"] = ["apiVersion", "kind", "metadata"]
    return jsonschema.Draft7Validator(strict(schema))


def schema_errors(obj: dict[str, Any]) -> list[str]:
    """Human-readable violations of the strict schema (empty when valid)."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key not in FILES:
        return [f"no CRD for {key}"]
    errors = validator(*key).iter_errors(obj)  # type: ignore[misc]
    return sorted(
        ".".join(str(part) for part in error.absolute_path) + ": " + error.message
        for error in errors
    )
