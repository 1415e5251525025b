"""Writing rendered objects: multi-document YAML, a JSON `v1` List, or the Helm chart's values.

Output is byte-identical across runs: the objects have a fixed key order, YAML uses
libyaml's C dumper when present (same bytes as the pure-Python one, about ten times
faster), and JSON is written with sorted keys. In YAML every string, key or value, that
some YAML reader could take for a boolean, null, number or timestamp is single-quoted
(`yaml_scalars.py`), so that Go's YAML (kubectl, Helm) reads back the string govfn wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from govfn.function import FunctionPlugin
from govfn.manifest.errors import ManifestError
from govfn.manifest.oidc import helm_trigger_accounts
from govfn.manifest.options import DEFAULT_SECRET_KEY, ManifestOptions, declared_delivery
from govfn.manifest.render import function_module, gc_paused, render_all
from govfn.manifest.yaml_scalars import plain_is_ambiguous
from govfn.registry import FunctionRegistry

FORMATS = ("yaml", "json", "helm-values")

Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_TAGS = {
    str: "tag:yaml.org,2002:str",
    int: "tag:yaml.org,2002:int",
    bool: "tag:yaml.org,2002:bool",
    type(None): "tag:yaml.org,2002:null",
}
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _StreamDumper(Dumper):  # type: ignore[misc, valid-type]
    """The safe dumper with implicit-tag resolution memoised: the same keys and values
    recur in every object, and resolving them dominates the time libyaml leaves to Python."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resolved: dict[tuple[str, Any], str] = {}  # one stream's worth, then dropped

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode:
            return str(super().resolve(kind, value, implicit))
        key = (value, implicit)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = super().resolve(kind, value, implicit)
        return found


class _Styles(dict[str, str | None]):
    """The style of each string: single quotes when a YAML reader could take it for something
    else (the emitter still picks double quotes when single ones cannot hold it), else the
    emitter's choice. A hit is one dict lookup: the same keys and values recur in every
    object. A new node is still built each time: the serializer writes a node met twice as
    an alias."""

    def __missing__(self, text: str) -> str | None:
        if len(self) > 65536:  # a bound for long-lived processes (the management API)
            self.clear()
        style = self[text] = "'" if plain_is_ambiguous(text) else None
        return style


_STYLES = _Styles()
_STR = _TAGS[str]


def _node(value: Any) -> yaml.Node:
    """The node SafeRepresenter would build, without its alias bookkeeping (none is needed:
    rendered objects share no sub-objects), with strings quoted as `_STYLES` says."""
    if isinstance(value, Mapping):
        items = [
            (yaml.ScalarNode(_STR, key, style=_STYLES[key]), _node(item))
            for key, item in value.items()
        ]
        return yaml.MappingNode(_MAP, items, flow_style=False)
    if isinstance(value, list | tuple):
        return yaml.SequenceNode(_SEQ, [_node(item) for item in value], flow_style=False)
    if isinstance(value, bool):
        return yaml.ScalarNode(_TAGS[bool], "true" if value else "false")
    if isinstance(value, int):
        return yaml.ScalarNode(_TAGS[int], str(value))
    if value is None:
        return yaml.ScalarNode(_TAGS[type(None)], "null")
    if isinstance(value, str):
        return yaml.ScalarNode(_STR, value, style=_STYLES[value])
    raise TypeError(f"cannot write {type(value).__name__} {value!r} into a manifest")


def dump_yaml(objects: Iterable[Mapping[str, Any]], *, explicit_start: bool = True) -> str:
    """Objects as a YAML stream, one `---` document each (what `kubectl apply -f -` reads).

    The bytes of `yaml.dump_all(..., Dumper=SafeDumper, sort_keys=False)` with these
    settings, but for the quoting of `_STYLES`, several times faster."""
    with gc_paused():
        text: str = yaml.serialize_all(
            [_node(obj) for obj in objects],
            Dumper=_StreamDumper,
            allow_unicode=True,
            explicit_start=explicit_start,
            width=4096,
        )
    return text


def dump_json_list(objects: Iterable[Mapping[str, Any]]) -> str:
    """Objects wrapped in a `v1` List, as `kubectl get -o json` prints several objects."""
    document = {"apiVersion": "v1", "kind": "List", "items": list(objects), "metadata": {}}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def helm_values(plugins: Iterable[FunctionPlugin], options: ManifestOptions) -> dict[str, Any]:
    """The values for `charts/govfn` that make `helm template` render the same objects.

    A function's own delivery (`govfn.Delivery`) is its `delivery`; the chart lets each key
    of the top-level `delivery` (the operator's) override it, as `govfn manifests` does."""
    functions = []
    for plugin in sorted(plugins, key=lambda plugin: plugin.function_id):
        function: dict[str, Any] = {
            "id": plugin.function_id,
            "version": plugin.version,
            "module": function_module(plugin),
            "descriptorCid": plugin.descriptor()["descriptor_cid"],
            "triggers": list(plugin.trigger_events),
            **helm_trigger_accounts(plugin, options),
        }
        declared = declared_delivery(plugin)
        spec = declared.to_spec() if declared is not None else None
        if spec is not None:
            function["delivery"] = spec
        functions.append(function)
    delivery = options.delivery.to_spec() or {}
    name, key = options.database_secret_ref() or ("", DEFAULT_SECRET_KEY)
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
        "chronicleSink": options.chronicle_sink or "",
        "databaseSecret": {"name": name, "key": key},
        "varSizeLimit": options.var_size_limit,
        "oidc": {"issuer": options.oidc_issuer or "", "eventSenders": list(options.event_senders)},
        "functions": functions,
    }


def render_output(
    functions: FunctionRegistry | Iterable[FunctionPlugin],
    options: ManifestOptions,
    output_format: str = "yaml",
) -> str:
    """Render, check and serialise in one of FORMATS."""
    plugins = functions.all() if isinstance(functions, FunctionRegistry) else list(functions)
    if options.event_types and output_format == "helm-values":
        raise ManifestError(
            "event_types", "the Helm chart renders no EventTypes; use --format yaml or json"
        )
    objects = render_all(plugins, options)
    if output_format == "yaml":
        return dump_yaml(objects)
    if output_format == "json":
        return dump_json_list(objects)
    if output_format == "helm-values":
        header = "# Values for charts/govfn, written by `govfn manifests --format helm-values`.\n"
        return header + dump_yaml([helm_values(plugins, options)], explicit_start=False)
    raise ValueError(f"unknown format {output_format!r}; expected one of {', '.join(FORMATS)}")


def render_yaml(
    functions: FunctionRegistry | Iterable[FunctionPlugin], options: ManifestOptions
) -> str:
    """The YAML that `govfn manifests` prints for these functions."""
    return render_output(functions, options, "yaml")
