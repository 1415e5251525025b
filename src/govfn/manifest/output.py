"""Writing rendered objects: multi-document YAML, a JSON `v1` List, or the Helm chart's values.

Output is byte-identical across runs: the objects have a fixed key order, YAML uses
libyaml's C dumper when present (same bytes as the pure-Python one, about ten times
faster), and JSON is written with sorted keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from govfn.function import FunctionPlugin
from govfn.manifest.options import ManifestOptions
from govfn.manifest.render import function_module, render_all
from govfn.registry import FunctionRegistry

FORMATS = ("yaml", "json", "helm-values")

Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(objects: Iterable[Mapping[str, Any]]) -> str:
    """Objects as a YAML stream, one `---` document each (what `kubectl apply -f -` reads)."""
    return yaml.dump_all(
        [dict(obj) for obj in objects],
        Dumper=Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
        width=4096,
    )


def dump_json_list(objects: Iterable[Mapping[str, Any]]) -> str:
    """Objects wrapped in a `v1` List, as `kubectl get -o json` prints several objects."""
    document = {"apiVersion": "v1", "kind": "List", "items": list(objects), "metadata": {}}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def helm_values(plugins: Iterable[FunctionPlugin], options: ManifestOptions) -> dict[str, Any]:
    """The values for `charts/govfn` that make `helm template` render the same objects."""
    functions = [
        {
            "id": plugin.function_id,
            "version": plugin.version,
            "module": function_module(plugin),
            "descriptorCid": plugin.descriptor()["descriptor_cid"],
            "triggers": list(plugin.trigger_events),
        }
        for plugin in sorted(plugins, key=lambda plugin: plugin.function_id)
    ]
    delivery = options.delivery.to_spec() or {}
    return {
        "image": options.image,
        "namespace": options.namespace or "",
        "broker": options.broker,
        "app": options.app,
        "namePrefix": options.name_prefix,
        "visibility": options.visibility,
        "serviceAccount": options.service_account or "",
        "env": dict(sorted(options.env.items())),
        "labels": dict(sorted(options.labels.items())),
        "annotations": dict(sorted(options.annotations.items())),
        "filters": dict(sorted(options.filters.items())),
        "autoscaling": {
            "minScale": options.min_scale,
            "maxScale": options.max_scale,
            "target": options.target_concurrency,
        },
        "containerConcurrency": options.container_concurrency,
        "timeoutSeconds": options.timeout_seconds,
        "resources": {
            "requests": dict(sorted(options.requests.items())),
            "limits": dict(sorted(options.limits.items())),
        },
        "delivery": delivery,
        "functions": functions,
    }


def render_output(
    functions: FunctionRegistry | Iterable[FunctionPlugin],
    options: ManifestOptions,
    output_format: str = "yaml",
) -> str:
    """Render, check and serialise in one of FORMATS."""
    plugins = functions.all() if isinstance(functions, FunctionRegistry) else list(functions)
    objects = render_all(plugins, options)
    if output_format == "yaml":
        return dump_yaml(objects)
    if output_format == "json":
        return dump_json_list(objects)
    if output_format == "helm-values":
        header = "# Values for charts/govfn, written by `govfn manifests --format helm-values`.\n"
        return header + yaml.dump(
            helm_values(plugins, options), Dumper=Dumper, sort_keys=False, width=4096
        )
    raise ValueError(f"unknown format {output_format!r}; expected one of {', '.join(FORMATS)}")


def render_yaml(
    functions: FunctionRegistry | Iterable[FunctionPlugin], options: ManifestOptions
) -> str:
    """The YAML that `govfn manifests` prints for these functions."""
    return render_output(functions, options, "yaml")
