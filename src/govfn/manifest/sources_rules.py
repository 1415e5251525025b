"""Knative Eventing's admission rules for a `sources.knative.dev/v1` SinkBinding
(knative/eventing `pkg/apis/sources/v1/sinkbinding_validation.go`; knative/pkg
`tracker/interface.go` `Reference.Validate` for the subject and `apis/duck/v1/destination.go`
`ValidateDestination` for the sink)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from govfn.manifest.checks import as_mapping, check_labels, fail

SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def check_sink_binding(obj: Mapping[str, Any]) -> None:
    spec = as_mapping(obj.get("spec"), "spec")
    namespace = as_mapping(obj["metadata"], "metadata").get("namespace")
    check_subject(spec.get("subject"), "spec.subject", namespace)
    check_sink(spec.get("sink"), "spec.sink")


def check_subject(subject: Any, path: str, namespace: str | None) -> None:
    """apiVersion and kind; exactly one of name and selector; the binding's own namespace."""
    reference = as_mapping(subject, path)
    for key in ("apiVersion", "kind"):
        if not isinstance(reference.get(key), str) or not reference.get(key):
            fail(f"{path}.{key}", "is required")
    has_name, has_selector = "name" in reference, "selector" in reference
    if has_name == has_selector:
        fail(path, "exactly one of name and selector must be set")
    if has_name and (not isinstance(reference["name"], str) or not reference["name"]):
        fail(f"{path}.name", f"{reference['name']!r} must be a non-empty string")
    if has_selector:
        check_selector(reference["selector"], f"{path}.selector")
    if "namespace" in reference:
        subject_namespace = reference["namespace"]
        if namespace is None:
            fail(
                f"{path}.namespace",
                f"{subject_namespace!r} is set but metadata.namespace is not; "
                "a SinkBinding binds only in its own namespace",
            )
        if subject_namespace != namespace:
            fail(
                f"{path}.namespace",
                f"{subject_namespace!r} must equal the SinkBinding's namespace {namespace!r}",
            )


def check_selector(selector: Any, path: str) -> None:
    """A label selector Kubernetes can parse (LabelSelectorAsSelector)."""
    chosen = as_mapping(selector, path)
    if "matchLabels" in chosen:
        check_labels(chosen["matchLabels"], f"{path}.matchLabels")
    expressions = chosen.get("matchExpressions", [])
    if not isinstance(expressions, list):
        fail(f"{path}.matchExpressions", "must be a list")
    for i, expression in enumerate(expressions):
        where = f"{path}.matchExpressions[{i}]"
        term = as_mapping(expression, where)
        if not isinstance(term.get("key"), str) or not term.get("key"):
            fail(f"{where}.key", "is required")
        operator = term.get("operator")
        if operator not in SELECTOR_OPERATORS:
            fail(f"{where}.operator", f"{operator!r} is not one of {', '.join(SELECTOR_OPERATORS)}")
        values = term.get("values", [])
        if operator in ("In", "NotIn") and not values:
            fail(f"{where}.values", f"must be non-empty for {operator}")
        if operator in ("Exists", "DoesNotExist") and values:
            fail(f"{where}.values", f"must be empty for {operator}")


def check_sink(sink: Any, path: str) -> None:
    """A ref, or a uri: alone absolute with a host; beside a ref only relative (a path)."""
    destination = as_mapping(sink, path)
    has_ref, has_uri = "ref" in destination, "uri" in destination
    if not has_ref and not has_uri:
        fail(path, "needs a ref or a uri")
    if has_ref:
        ref = as_mapping(destination["ref"], f"{path}.ref")
        for key in ("apiVersion", "kind", "name"):
            if not isinstance(ref.get(key), str) or not ref.get(key):
                fail(f"{path}.ref.{key}", "is required")
    if has_uri:
        uri = destination["uri"]
        if not isinstance(uri, str) or not uri:
            fail(f"{path}.uri", f"{uri!r} must be a non-empty URI")
        parts = urlsplit(uri)
        absolute = bool(parts.scheme)
        if has_ref and absolute:
            fail(
                f"{path}.uri", f"{uri!r} is absolute: beside a ref only a relative path is allowed"
            )
        if not has_ref and not (absolute and parts.hostname):
            fail(f"{path}.uri", f"{uri!r} must be an absolute URI with a host")
