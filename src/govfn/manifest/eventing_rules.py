"""Knative Eventing's admission rules for an `eventing.knative.dev/v1` Trigger
(knative/eventing `pkg/apis/eventing/v1/trigger_validation.go`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from govfn.manifest.checks import (
    ATTRIBUTE_NAME,
    DURATION,
    FILTER_DIALECTS,
    as_mapping,
    fail,
)

BACKOFF_POLICIES = ("linear", "exponential")


def check_trigger(obj: Mapping[str, Any]) -> None:
    spec = as_mapping(obj.get("spec"), "spec")
    if ("broker" in spec) == ("brokerRef" in spec):
        fail("spec.broker", "exactly one of spec.broker and spec.brokerRef must be set")
    if "broker" in spec and (not isinstance(spec["broker"], str) or not spec["broker"]):
        fail("spec.broker", f"{spec['broker']!r} must be a non-empty string")
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
        if not isinstance(name, str) or not ATTRIBUTE_NAME.match(name):
            fail(f"{path}[{name}]", f"attribute name {name!r} must match ^[a-z][a-z0-9]*$")
        if not isinstance(value, str):
            fail(f"{path}[{name}]", f"value {value!r} must be a string")


def check_destination(destination: Any, path: str) -> None:
    dest = as_mapping(destination, path)
    if "ref" not in dest and "uri" not in dest:
        fail(path, "needs a ref or a uri")
    if "ref" in dest:
        ref = as_mapping(dest["ref"], f"{path}.ref")
        for key in ("apiVersion", "kind", "name"):
            if not isinstance(ref.get(key), str) or not ref.get(key):
                fail(f"{path}.ref.{key}", "is required")
    if "uri" in dest and (not isinstance(dest["uri"], str) or not dest["uri"]):
        fail(f"{path}.uri", f"{dest['uri']!r} must be a non-empty URI")


def check_delivery(delivery: Mapping[str, Any], path: str) -> None:
    retry = delivery.get("retry")
    if retry is not None and (isinstance(retry, bool) or not isinstance(retry, int) or retry < 0):
        fail(f"{path}.retry", f"{retry!r} must be a non-negative integer")
    policy = delivery.get("backoffPolicy")
    if policy is not None and policy not in BACKOFF_POLICIES:
        fail(f"{path}.backoffPolicy", f"{policy!r} must be linear or exponential")
    for key in ("backoffDelay", "timeout"):
        value = delivery.get(key)
        if value is not None and (not isinstance(value, str) or not DURATION.match(value)):
            fail(f"{path}.{key}", f"{value!r} is not an ISO-8601 duration such as PT0.5S")
    if "deadLetterSink" in delivery:
        check_destination(delivery["deadLetterSink"], f"{path}.deadLetterSink")
