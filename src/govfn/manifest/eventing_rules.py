"""Knative Eventing's admission rules for an `eventing.knative.dev/v1` Trigger
(knative/eventing `pkg/apis/eventing/v1/trigger_validation.go`, `pkg/apis/duck/v1/
delivery_types.go`; knative/pkg `apis/duck/v1/destination.go`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from govfn.manifest.checks import (
    ATTRIBUTE_NAME,
    DURATION,
    FILTER_DIALECTS,
    INT32_MAX,
    as_mapping,
    fail,
)
from govfn.manifest.durations import knative_period
from govfn.manifest.sources_rules import check_sink

BACKOFF_POLICIES = ("linear", "exponential")
DEPENDENCY_ANNOTATION = "knative.dev/dependency"
INJECTION_ANNOTATION = "eventing.knative.dev/injection"


def check_trigger(obj: Mapping[str, Any]) -> None:
    spec = as_mapping(obj.get("spec"), "spec")
    if ("broker" in spec) == ("brokerRef" in spec):
        fail("spec.broker", "exactly one of spec.broker and spec.brokerRef must be set")
    if "broker" in spec and (not isinstance(spec["broker"], str) or not spec["broker"]):
        fail("spec.broker", f"{spec['broker']!r} must be a non-empty string")
    check_trigger_annotations(as_mapping(obj["metadata"], "metadata"), spec)
    check_destination(spec.get("subscriber"), "spec.subscriber")
    if "filter" in spec:
        attributes = as_mapping(spec["filter"], "spec.filter").get("attributes", {})
        check_attributes(attributes, "spec.filter.attributes")
    for i, element in enumerate(spec.get("filters", [])):
        dialects = [
            name for name in FILTER_DIALECTS if name in as_mapping(element, f"spec.filters[{i}]")
        ]
        if len(dialects) != 1:
            fail(
                f"spec.filters[{i}]",
                f"exactly one dialect of {', '.join(FILTER_DIALECTS)} is expected",
            )
        if dialects[0] in ("exact", "prefix", "suffix"):
            check_attributes(element[dialects[0]], f"spec.filters[{i}].{dialects[0]}")
    if "delivery" in spec:
        check_delivery(as_mapping(spec["delivery"], "spec.delivery"), "spec.delivery")


def check_attributes(attributes: Any, path: str) -> None:
    for name, value in as_mapping(attributes, path).items():
        if not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(name):
            fail(f"{path}[{name}]", f"attribute name {name!r} must match ^[a-z][a-z0-9]*$")
        if not isinstance(value, str):
            fail(f"{path}[{name}]", f"value {value!r} must be a string")


def check_destination(destination: Any, path: str) -> None:
    """A ref, or a uri: alone absolute with a host; beside a ref only a relative path."""
    check_sink(destination, path)


def check_trigger_annotations(metadata: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    annotations = metadata.get("annotations", {})
    if DEPENDENCY_ANNOTATION in annotations:
        where = f"metadata.annotations[{DEPENDENCY_ANNOTATION}]"
        try:
            reference = json.loads(annotations[DEPENDENCY_ANNOTATION])
        except ValueError:
            reference = None
        if not isinstance(reference, dict):
            fail(where, "must be a JSON object reference {apiVersion, kind, name}")
        for key in ("apiVersion", "kind", "name"):
            if not isinstance(reference.get(key), str) or not reference[key]:
                fail(where, f"the reference needs a {key}")
        namespace = reference.get("namespace", "")
        if namespace not in ("", metadata.get("namespace")):
            fail(where, f"namespace {namespace!r} must be empty or the Trigger's own")
    if INJECTION_ANNOTATION in annotations:
        where = f"metadata.annotations[{INJECTION_ANNOTATION}]"
        if annotations[INJECTION_ANNOTATION] not in ("enabled", "disabled"):
            fail(where, f"{annotations[INJECTION_ANNOTATION]!r} must be enabled or disabled")
        if spec.get("broker") != "default":
            fail(where, "applies only to the broker named default")


def check_delivery(delivery: Mapping[str, Any], path: str) -> None:
    retry = delivery.get("retry")
    if retry is not None and (
        isinstance(retry, bool) or not isinstance(retry, int) or not 0 <= retry <= INT32_MAX
    ):
        fail(f"{path}.retry", f"{retry!r} must be an integer in [0, {INT32_MAX}]")
    policy = delivery.get("backoffPolicy")
    if policy is not None and policy not in BACKOFF_POLICIES:
        fail(f"{path}.backoffPolicy", f"{policy!r} must be linear or exponential")
    for key in ("backoffDelay", "timeout"):
        value = delivery.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not DURATION.fullmatch(value):
            fail(f"{path}.{key}", f"{value!r} is not an ISO-8601 duration such as PT0.5S")
        try:
            period = knative_period(value)
        except ValueError as exc:
            fail(f"{path}.{key}", f"{value!r} does not parse as Knative parses it: {exc}")
        if key == "timeout" and not any(period):
            fail(
                f"{path}.{key}",
                f"{value!r} is zero to Knative, which keeps tenths of a second (PT0.1S at least)",
            )
    if "deadLetterSink" in delivery:
        check_destination(delivery["deadLetterSink"], f"{path}.deadLetterSink")
