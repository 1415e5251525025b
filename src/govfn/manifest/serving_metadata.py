"""Knative Serving's rules on a Service's metadata and on its revision template's metadata
(knative/serving `pkg/apis/serving/metadata_validation.go`, `v1/service_validation.go`,
`v1/revision_validation.go`; knative/pkg `apis/metadata_validation.go`):

- the Service's name is a DNS-1035 label (a letter first: `1fn` is refused);
- no `autoscaling.knative.dev*` annotation outside the template;
- `serving.knative.dev/rollout-duration` (or its old spelling `rolloutDuration`) on the
  Service and `serving.knative.dev/progress-deadline` on the template: a Go duration
  (`time.ParseDuration`: `90s`, `2m30s`), whole seconds, not negative;
- `serving.knative.dev/creator` and `lastModifier` belong to Knative: it sets them, and a
  value of anyone else's makes the next apply fail ("annotation value is immutable");
- the visibility label is `cluster-local` when present.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from govfn.manifest.checks import (
    as_mapping,
    check_annotations,
    check_autoscaling,
    check_labels,
    fail,
)
from govfn.manifest.durations import SECOND, go_duration

VISIBILITY_LABEL = "networking.knative.dev/visibility"
AUTOSCALING_GROUP = "autoscaling.knative.dev"
ROLLOUT_DURATION = ("serving.knative.dev/rollout-duration", "serving.knative.dev/rolloutDuration")
PROGRESS_DEADLINE = ("serving.knative.dev/progress-deadline",)
KNATIVE_SET = ("serving.knative.dev/creator", "serving.knative.dev/lastModifier")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
TEMPLATE = "spec.template.metadata"


def check_service_metadata(metadata: Mapping[str, Any]) -> None:
    name = metadata.get("name")
    if isinstance(name, str) and not DNS1035_LABEL.fullmatch(name):
        fail("metadata.name", f"{name!r} must start with a letter (a DNS-1035 label)")
    annotations = as_mapping(metadata.get("annotations", {}), "metadata.annotations")
    for key in annotations:
        if key.startswith(AUTOSCALING_GROUP):
            fail(
                f"metadata.annotations[{key}]",
                "autoscaling annotations are allowed only on spec.template.metadata.annotations",
            )
        if key in KNATIVE_SET:
            fail(
                f"metadata.annotations[{key}]",
                "is set by Knative (the user who created or last changed the Service); "
                "a value of yours makes later applies fail as immutable",
            )
    check_whole_seconds(annotations, ROLLOUT_DURATION, "metadata.annotations")
    visibility = metadata.get("labels", {}).get(VISIBILITY_LABEL)
    if visibility is not None and visibility != "cluster-local":
        fail(f"metadata.labels[{VISIBILITY_LABEL}]", f"{visibility!r} must be 'cluster-local'")


def check_template_metadata(metadata: Mapping[str, Any]) -> None:
    check_labels(metadata.get("labels", {}), f"{TEMPLATE}.labels")
    annotations = metadata.get("annotations", {})
    check_annotations(annotations, f"{TEMPLATE}.annotations")
    check_autoscaling(annotations, f"{TEMPLATE}.annotations")
    check_whole_seconds(annotations, PROGRESS_DEADLINE, f"{TEMPLATE}.annotations")


def check_whole_seconds(annotations: Mapping[str, Any], keys: tuple[str, ...], path: str) -> None:
    """The first of `keys` present (Knative's kmap.KeyPriority): a Go duration of whole
    seconds, not negative; an empty value is ignored, as Knative ignores it."""
    key = next((key for key in keys if key in annotations), None)
    if key is None or annotations[key] == "":
        return
    value = annotations[key]
    try:
        nanoseconds = go_duration(value)
    except ValueError as exc:
        fail(f"{path}[{key}]", f"{value!r} is not a Go duration such as 90s or 2m30s ({exc})")
    if nanoseconds % SECOND:
        fail(f"{path}[{key}]", f"{value!r} is not at second precision")
    if nanoseconds < 0:
        fail(f"{path}[{key}]", f"{value!r} must not be negative")
