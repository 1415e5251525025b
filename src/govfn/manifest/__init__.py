"""Knative manifests for governed functions: render, validate, write and apply.

`render_all` turns registered functions into one Knative Service each and one Trigger per
trigger event type, checked against the rules Knative's admission webhooks enforce;
`render_yaml` writes them as `govfn manifests` does. Nothing here imports the kubernetes
client; only `govfn.manifest.apply` (used by `govfn apply`) does.
"""

from govfn.manifest.errors import ManifestError
from govfn.manifest.options import Delivery, ManifestOptions
from govfn.manifest.output import dump_json_list, dump_yaml, helm_values, render_output, render_yaml
from govfn.manifest.render import render_all, render_function
from govfn.manifest.validate import validate_object, validate_objects

__all__ = [
    "Delivery",
    "ManifestError",
    "ManifestOptions",
    "dump_json_list",
    "dump_yaml",
    "helm_values",
    "render_all",
    "render_function",
    "render_output",
    "render_yaml",
    "validate_object",
    "validate_objects",
]
