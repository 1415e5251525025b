"""Knative Eventing's admission rules for an `eventing.knative.dev/v1beta2` EventType
(knative/eventing `pkg/apis/eventing/v1beta2/eventtype_validation.go`: `spec.type` is
required; knative/pkg `apis/duck/v1/knative_reference.go` `KReference.Validate`: a
reference names its apiVersion, kind and name). `schemaData` is not validated by Knative
("application specific data"); the CRD wants every field of `spec` a string."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from govfn.manifest.checks import as_mapping, fail

STRING_FIELDS = ("broker", "description", "schema", "schemaData", "source", "type")


def check_event_type(obj: Mapping[str, Any]) -> None:
    spec = as_mapping(obj.get("spec"), "spec")
    if not isinstance(spec.get("type"), str) or not spec["type"]:
        fail("spec.type", "is required")
    for key in STRING_FIELDS:
        if key in spec and not isinstance(spec[key], str):
            fail(f"spec.{key}", f"{spec[key]!r} must be a string")
    if "reference" in spec:
        reference = as_mapping(spec["reference"], "spec.reference")
        for key in ("apiVersion", "kind", "name"):
            if not isinstance(reference.get(key), str) or not reference[key]:
                fail(f"spec.reference.{key}", "is required")
