"""The rules Knative's admission webhooks (and the apiserver) enforce that the CRD schemas miss.

`validate_objects` raises ManifestError on the first violation, naming the object and the
field path (`spec.template.spec.containers[0].ports[0].containerPort: 8012 is reserved`).
It works on any Service/Trigger dict, not only rendered ones, so a hand-edited object is
checked the same way. Rules, from knative/serving `pkg/apis/serving` and knative/eventing
`trigger_validation.go`:

- autoscaling annotations only on `spec.template.metadata`; annotation and label values are
  strings; label keys and values follow Kubernetes' qualified-name rules;
- one container, at most one port named "", http1 or h2c, TCP, not a reserved port;
- probes with exactly one handler and, when given, the container's port;
- no user-set PORT / K_SERVICE / K_CONFIGURATION / K_REVISION;
- `containerConcurrency` in [0, 1000], `timeoutSeconds` in [0, 600];
- quantities are strings or integers that parse, requests not above limits;
- the restricted Pod Security Standard, read-only root filesystem, mounts of declared volumes;
- env entries with a value or a `valueFrom` (not both) naming one Secret or ConfigMap key
  (fieldRef and resourceFieldRef need a Knative feature flag); emptyDir `sizeLimit` a
  non-negative quantity;
- Triggers: exactly one of broker/brokerRef, a subscriber, filter attribute names
  `^[a-z][a-z0-9]*$` with string values, one dialect per `filters` element, and a delivery
  with a known backoff policy, ISO-8601 durations and a sink with a ref or a uri;
- EventTypes (`govfn manifests --event-types`): a `spec.type`, string fields, a reference
  with apiVersion, kind and name;
- SinkBindings: a subject with apiVersion, kind and exactly one of name or selector, in the
  binding's own namespace; a sink with a ref or a uri, a lone uri absolute with a host, and
  no absolute uri beside a ref.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from govfn.manifest.checks import check_metadata
from govfn.manifest.errors import ManifestError
from govfn.manifest.eventing_rules import check_trigger
from govfn.manifest.eventtype_rules import check_event_type
from govfn.manifest.serving_rules import check_service
from govfn.manifest.sources_rules import check_sink_binding

CHECKS = {
    ("serving.knative.dev/v1", "Service"): check_service,
    ("eventing.knative.dev/v1", "Trigger"): check_trigger,
    ("sources.knative.dev/v1", "SinkBinding"): check_sink_binding,
    ("eventing.knative.dev/v1beta2", "EventType"): check_event_type,
}


def describe(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return f"{obj.get('kind', '?')} {name!r}"


def validate_object(obj: Mapping[str, Any]) -> None:
    """Raise ManifestError (naming the object and field) if Knative would refuse `obj`."""
    check = CHECKS.get((obj.get("apiVersion"), obj.get("kind")))  # type: ignore[arg-type]
    try:
        if check is None:
            raise ManifestError(
                "kind", f"{obj.get('apiVersion')}/{obj.get('kind')} is not a govfn object"
            )
        check_metadata(obj.get("metadata"))
        check(obj)
    except ManifestError as exc:
        if exc.obj is not None:
            raise
        raise ManifestError(exc.field, exc.reason, obj=describe(obj)) from None


def validate_objects(objects: Iterable[Mapping[str, Any]]) -> None:
    for obj in objects:
        validate_object(obj)
