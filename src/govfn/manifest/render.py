"""Render functions into Knative objects: one Service each, one Trigger per trigger type,
and one SinkBinding per Service that gives it K_SINK (where the Chronicle's records go);
with `event_types`, an EventType per trigger type of each typed function, holding the JSON
Schema of the data it reads.

The objects are plain dicts in a fixed key order, with every map sorted, so the same
functions and options always give the same bytes. Everything rendered passes through
`validate.validate_objects` before it is returned, and `render_all` also refuses name
collisions and reply loops across the whole set.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from govfn.function import FunctionPlugin
from govfn.manifest.errors import ManifestError
from govfn.manifest.loops import check_record_loops, check_reply_loops
from govfn.manifest.names import check_unique, service_name, sink_binding_name, trigger_name
from govfn.manifest.oidc import ENV_NAMES, oidc_env, service_audience
from govfn.manifest.options import ManifestOptions, function_delivery
from govfn.manifest.validate import validate_objects
from govfn.registry import FunctionRegistry

SERVICE_API = "serving.knative.dev/v1"
TRIGGER_API = "eventing.knative.dev/v1"
SINK_BINDING_API = "sources.knative.dev/v1"
EVENT_TYPE_API = "eventing.knative.dev/v1beta2"  # the storage version of Knative 1.22's CRD
BROKER_API = "eventing.knative.dev/v1"
CONTAINER_NAME = "function"
CONTAINER_PORT = 8080
LEDGER_VOLUME = "ledger"
TMP_VOLUME = "tmp"
LEDGER_DIR = "/var/lib/govfn"
CHRONICLE_PATH = f"{LEDGER_DIR}/chronicle.db"
SPOOL_DIR = f"{LEDGER_DIR}/spool"
SINK_BINDING_ENV = ("K_SINK", "K_CE_OVERRIDES", "K_CA_CERTS")  # the binding injects these
DESCRIPTOR_ANNOTATION = "govfn.dev/descriptor-cid"
FUNCTION_ANNOTATION = "govfn.dev/function"
VISIBILITY_LABEL = "networking.knative.dev/visibility"
MANAGED_BY = "govfn"
_LABEL_VALUE_JUNK = re.compile(r"[^A-Za-z0-9._-]")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector while building many small acyclic dicts and nodes.

    Rendering 1,000 functions allocates ~10^5 containers; the generational collector then
    rescans the growing graph again and again (4-5x the work) for cycles there are none of.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def function_module(plugin: FunctionPlugin) -> str:
    """The module that defines `plugin`, which `govfn serve --functions` must import."""
    module = type(plugin).__module__
    if module in ("__main__", "builtins") or not module:
        raise ManifestError(
            "functions",
            f"{plugin.function_id!r} is defined in {module!r}; define it in an importable module",
        )
    return module


def common_labels(
    plugin: FunctionPlugin, options: ManifestOptions, component: str
) -> dict[str, str]:
    labels = dict(options.labels)
    labels.update(
        {
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "app.kubernetes.io/name": plugin.function_id,
            "app.kubernetes.io/part-of": options.app,
            "app.kubernetes.io/version": _LABEL_VALUE_JUNK.sub("_", plugin.version)[:63],
        }
    )
    return dict(sorted(labels.items()))


def _metadata(
    name: str, options: ManifestOptions, labels: dict[str, str], annotations: dict[str, str]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if options.namespace:
        metadata["namespace"] = options.namespace
    metadata["labels"] = labels
    metadata["annotations"] = dict(sorted(annotations.items()))
    return metadata


def _template_annotations(options: ManifestOptions) -> dict[str, str]:
    annotations: dict[str, str] = {}
    if options.min_scale is not None:
        annotations["autoscaling.knative.dev/min-scale"] = str(options.min_scale)
    if options.max_scale is not None:
        annotations["autoscaling.knative.dev/max-scale"] = str(options.max_scale)
    if options.target_concurrency is not None:
        annotations["autoscaling.knative.dev/target"] = str(options.target_concurrency)
    return annotations


def _env(plugin: FunctionPlugin, options: ManifestOptions, service: str) -> list[dict[str, Any]]:
    """The container's env, sorted by name: the Chronicle's location, the receiver's OIDC
    settings (with `--oidc-issuer`), then the user's.

    With a database Secret, GOVFN_CHRONICLE comes from the Secret and the emptyDir keeps
    only the spool; a user's GOVFN_CHRONICLE would silently replace the Secret, so it is
    refused. With a SinkBinding, K_SINK and friends belong to the binding.
    """
    secret = options.database_secret_ref()
    entries: dict[str, dict[str, Any]] = {}
    if secret is None:
        entries["GOVFN_CHRONICLE"] = {"name": "GOVFN_CHRONICLE", "value": CHRONICLE_PATH}
    else:
        if "GOVFN_CHRONICLE" in options.env:
            raise ManifestError(
                "env[GOVFN_CHRONICLE]",
                "conflicts with --database-secret, which sets GOVFN_CHRONICLE from the Secret",
            )
        name, key = secret
        entries["GOVFN_CHRONICLE"] = {
            "name": "GOVFN_CHRONICLE",
            "valueFrom": {"secretKeyRef": {"name": name, "key": key}},
        }
        entries["GOVFN_CHRONICLE_SPOOL"] = {"name": "GOVFN_CHRONICLE_SPOOL", "value": SPOOL_DIR}
    if options.chronicle_sink_destination() is not None:
        for name in SINK_BINDING_ENV:
            if name in options.env:
                raise ManifestError(
                    f"env[{name}]",
                    "is injected by the SinkBinding (--chronicle-sink); "
                    "use --chronicle-sink none to set it yourself",
                )
    for name in ENV_NAMES:
        if name in options.env:
            raise ManifestError(
                f"env[{name}]",
                "is set by --oidc-issuer and --event-sender, which also give the Triggers "
                "their audience",
            )
    if options.oidc_issuer is not None:
        triggers = [trigger_name(service, kind) for kind in plugin.trigger_events]
        for name, value in oidc_env(options, _oidc_namespace(options), service, triggers):
            entries[name] = {"name": name, "value": value}
    for name, value in options.env.items():
        entries[name] = {"name": name, "value": value}
    return [entries[name] for name in sorted(entries)]


def _oidc_namespace(options: ManifestOptions) -> str:
    if not options.namespace:
        raise ManifestError(
            "namespace",
            "--oidc-issuer needs --namespace: the audience and the Triggers' OIDC subjects name it",
        )
    return options.namespace


def _container(plugin: FunctionPlugin, options: ManifestOptions, service: str) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/health/readiness"}}
    return {
        "name": CONTAINER_NAME,
        "image": options.image,
        "command": ["govfn"],
        "args": [
            "serve",
            "--function",
            plugin.function_id,
            "--functions",
            function_module(plugin),
            "--single-process",  # Knative scales pods; the kubelet restarts what exits
        ],
        "ports": [{"name": "http1", "containerPort": CONTAINER_PORT}],
        "env": _env(plugin, options, service),
        "readinessProbe": probe,
        "livenessProbe": {"httpGet": {"path": "/health/liveness"}},
        "resources": {
            "requests": dict(sorted(options.requests.items())),
            "limits": dict(sorted(options.limits.items())),
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": LEDGER_VOLUME, "mountPath": LEDGER_DIR},
            {"name": TMP_VOLUME, "mountPath": "/tmp"},  # gunicorn's heartbeat files
        ],
    }


def render_service(plugin: FunctionPlugin, options: ManifestOptions) -> dict[str, Any]:
    name = service_name(options.name_prefix, plugin.function_id)
    labels = common_labels(plugin, options, "function")
    if options.visibility == "cluster-local":
        labels = dict(sorted({**labels, VISIBILITY_LABEL: "cluster-local"}.items()))
    annotations = {
        **options.annotations,
        DESCRIPTOR_ANNOTATION: plugin.descriptor()["descriptor_cid"],
        FUNCTION_ANNOTATION: plugin.function_id,
    }
    template_metadata: dict[str, Any] = {"labels": common_labels(plugin, options, "function")}
    template_annotations = _template_annotations(options)
    if template_annotations:
        template_metadata["annotations"] = dict(sorted(template_annotations.items()))
    pod_spec: dict[str, Any] = {}
    if options.service_account:
        pod_spec["serviceAccountName"] = options.service_account
    if options.container_concurrency is not None:
        pod_spec["containerConcurrency"] = options.container_concurrency
    if options.timeout_seconds is not None:
        pod_spec["timeoutSeconds"] = options.timeout_seconds
    pod_spec["containers"] = [_container(plugin, options, name)]
    pod_spec["volumes"] = [
        {"name": LEDGER_VOLUME, "emptyDir": {"sizeLimit": options.var_size_limit}},
        {"name": TMP_VOLUME, "emptyDir": {}},
    ]
    return {
        "apiVersion": SERVICE_API,
        "kind": "Service",
        "metadata": _metadata(name, options, labels, annotations),
        "spec": {"template": {"metadata": template_metadata, "spec": pod_spec}},
    }


def render_trigger(
    plugin: FunctionPlugin, options: ManifestOptions, event_type: str, service: str
) -> dict[str, Any]:
    annotations = {**options.annotations, FUNCTION_ANNOTATION: plugin.function_id}
    attributes = {**options.filters, "type": event_type}
    subscriber_ref: dict[str, Any] = {"apiVersion": SERVICE_API, "kind": "Service", "name": service}
    if options.namespace:
        subscriber_ref["namespace"] = options.namespace
    subscriber: dict[str, Any] = {"ref": subscriber_ref}
    if options.oidc_issuer is not None:  # a Service publishes no audience: the Trigger names it
        subscriber["audience"] = service_audience(_oidc_namespace(options), service)
    spec: dict[str, Any] = {
        "broker": options.broker,
        "filter": {"attributes": dict(sorted(attributes.items()))},
        "subscriber": subscriber,
    }
    delivery = function_delivery(plugin, options.delivery).to_spec()
    if delivery is not None:
        spec["delivery"] = delivery
    return {
        "apiVersion": TRIGGER_API,
        "kind": "Trigger",
        "metadata": _metadata(
            trigger_name(service, event_type),
            options,
            common_labels(plugin, options, "trigger"),
            annotations,
        ),
        "spec": spec,
    }


def render_sink_binding(
    plugin: FunctionPlugin, options: ManifestOptions, service: str
) -> dict[str, Any] | None:
    """The SinkBinding whose subject is `service` and whose sink takes the Chronicle's
    records (K_SINK); None when `--chronicle-sink none`."""
    sink = options.chronicle_sink_destination()
    if sink is None:
        return None
    subject: dict[str, Any] = {"apiVersion": SERVICE_API, "kind": "Service", "name": service}
    if options.namespace:
        subject["namespace"] = options.namespace
        if "ref" in sink:
            sink = {"ref": {**sink["ref"], "namespace": options.namespace}}
    annotations = {**options.annotations, FUNCTION_ANNOTATION: plugin.function_id}
    return {
        "apiVersion": SINK_BINDING_API,
        "kind": "SinkBinding",
        "metadata": _metadata(
            sink_binding_name(service),
            options,
            common_labels(plugin, options, "chronicle-sink"),
            annotations,
        ),
        "spec": {"subject": subject, "sink": sink},
    }


def render_event_type(
    plugin: FunctionPlugin, options: ManifestOptions, event_type: str, service: str
) -> dict[str, Any] | None:
    """The EventType of `event_type` as `plugin` reads it: the Triggers' Broker as its
    reference, the JSON Schema of the handler's event type as `schemaData` (compact JSON,
    sorted keys); None for an untyped function."""
    model = plugin.event_model
    if model is None:
        return None
    reference: dict[str, Any] = {"apiVersion": BROKER_API, "kind": "Broker", "name": options.broker}
    if options.namespace:
        reference["namespace"] = options.namespace
    schema = json.dumps(model.json_schema(), sort_keys=True, separators=(",", ":"))
    annotations = {**options.annotations, FUNCTION_ANNOTATION: plugin.function_id}
    return {
        "apiVersion": EVENT_TYPE_API,
        "kind": "EventType",
        "metadata": _metadata(
            trigger_name(service, event_type),
            options,
            common_labels(plugin, options, "event-type"),
            annotations,
        ),
        "spec": {
            "type": event_type,
            "reference": reference,
            "description": f"{event_type} as function {plugin.function_id} reads it ({model.name})",
            "schemaData": schema,
        },
    }


def _render_unchecked(plugin: FunctionPlugin, options: ManifestOptions) -> list[dict[str, Any]]:
    service = render_service(plugin, options)
    name = service["metadata"]["name"]
    triggers = [render_trigger(plugin, options, kind, name) for kind in plugin.trigger_events]
    binding = render_sink_binding(plugin, options, name)
    objects = [service, *triggers, *([binding] if binding is not None else [])]
    if options.event_types:
        for kind in plugin.trigger_events:
            event_type = render_event_type(plugin, options, kind, name)
            if event_type is not None:
                objects.append(event_type)
    return objects


def _check_names(objects: list[dict[str, Any]]) -> None:
    for kind in ("Service", "Trigger", "SinkBinding", "EventType"):
        pairs = []
        for obj in objects:
            if obj["kind"] == kind:
                metadata = obj["metadata"]
                origin = f"function {metadata['annotations'][FUNCTION_ANNOTATION]!r}"
                if kind == "Trigger":
                    origin += f" type {obj['spec']['filter']['attributes']['type']!r}"
                if kind == "EventType":
                    origin += f" type {obj['spec']['type']!r}"
                pairs.append((metadata["name"], origin))
        check_unique(kind, pairs)


def records_reach_triggers(options: ManifestOptions) -> bool:
    """Whether the SinkBinding's sink is the Broker the Triggers subscribe to."""
    sink = options.chronicle_sink_destination()
    ref = sink.get("ref") if sink else None
    return ref is not None and ref["kind"] == "Broker" and ref["name"] == options.broker


def render_function(plugin: FunctionPlugin, options: ManifestOptions) -> list[dict[str, Any]]:
    """The Service, Triggers and SinkBinding of one function, validated as Knative's
    webhooks would."""
    if not options.allow_reply_loops:
        check_reply_loops([plugin])
        if records_reach_triggers(options):
            check_record_loops([plugin])
    objects = _render_unchecked(plugin, options)
    _check_names(objects)
    validate_objects(objects)
    return objects


def render_all(
    functions: FunctionRegistry | Iterable[FunctionPlugin], options: ManifestOptions
) -> list[dict[str, Any]]:
    """Every function's objects (sorted by function id), after the reply-loop check."""
    plugins = sorted(
        functions.all() if isinstance(functions, FunctionRegistry) else functions,
        key=lambda plugin: plugin.function_id,
    )
    if not options.allow_reply_loops:
        check_reply_loops(plugins)
        if records_reach_triggers(options):
            check_record_loops(plugins)
    with gc_paused():
        objects = [obj for plugin in plugins for obj in _render_unchecked(plugin, options)]
        _check_names(objects)
        validate_objects(objects)
    return objects
