"""Knative Serving's admission rules for a `serving.knative.dev/v1` Service, plus the
restricted Pod Security Standard govfn always asks for (see `validate.py` for the list;
metadata and annotations are in `serving_metadata.py`)."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from govfn.manifest.checks import (
    CONFIG_KEY,
    ENV_NAME,
    MAX_CONTAINER_CONCURRENCY,
    MAX_TIMEOUT_SECONDS,
    PORT_NAMES,
    PROBE_HANDLERS,
    RESERVED_ENV,
    RESERVED_PORTS,
    as_mapping,
    check_int_range,
    fail,
)
from govfn.manifest.image_ref import image_problem
from govfn.manifest.quantity import parse_quantity
from govfn.manifest.serving_metadata import check_service_metadata, check_template_metadata
from govfn.names import DNS1123_LABEL, DNS1123_SUBDOMAIN

TEMPLATE = "spec.template"
POD = "spec.template.spec"
ENV_SOURCES = ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef")
FLAGGED_ENV_SOURCES = ("fieldRef", "resourceFieldRef")
RESERVED_MOUNT_PATHS = ("/", "/dev", "/dev/log")
RESERVED_CONTAINER_NAMES = ("queue-proxy",)


def check_service(obj: Mapping[str, Any]) -> None:
    check_service_metadata(as_mapping(obj["metadata"], "metadata"))
    template = as_mapping(as_mapping(obj.get("spec"), "spec").get("template"), TEMPLATE)
    check_template_metadata(as_mapping(template.get("metadata", {}), f"{TEMPLATE}.metadata"))
    check_pod_spec(as_mapping(template.get("spec"), POD))


def check_pod_spec(pod: Mapping[str, Any]) -> None:
    if "containerConcurrency" in pod:
        check_int_range(
            pod["containerConcurrency"], f"{POD}.containerConcurrency", 0, MAX_CONTAINER_CONCURRENCY
        )
    if "timeoutSeconds" in pod:
        check_int_range(pod["timeoutSeconds"], f"{POD}.timeoutSeconds", 0, MAX_TIMEOUT_SECONDS)
    account = pod.get("serviceAccountName")
    if account is not None and (
        not isinstance(account, str)
        or len(account) > 253
        or not DNS1123_SUBDOMAIN.fullmatch(account)
    ):
        fail(
            f"{POD}.serviceAccountName",
            f"{account!r} is not a DNS-1123 subdomain (lower case, digits, '-', '.')",
        )
    containers = pod.get("containers")
    if not isinstance(containers, list) or len(containers) != 1:
        fail(f"{POD}.containers", "exactly one container is expected")
    container = as_mapping(containers[0], f"{POD}.containers[0]")
    volumes = check_volumes(pod.get("volumes", []), container.get("volumeMounts", []))
    check_container(container, f"{POD}.containers[0]", volumes)


def check_volumes(volumes: Any, mounts: Any) -> set[str]:
    """Each volume named by a DNS-1123 label, once, and mounted; returns the names."""
    if not isinstance(volumes, list) or not isinstance(mounts, list):
        fail(f"{POD}.volumes", "volumes and volumeMounts must be lists")
    mounted = {mount.get("name") for mount in mounts if isinstance(mount, Mapping)}
    names: set[str] = set()
    for i, volume in enumerate(volumes):
        declared = as_mapping(volume, f"{POD}.volumes[{i}]")
        name = declared.get("name")
        if not isinstance(name, str) or len(name) > 63 or not DNS1123_LABEL.fullmatch(name):
            fail(f"{POD}.volumes[{i}].name", f"{name!r} is not a DNS-1123 label")
        if name in names:
            fail(f"{POD}.volumes[{i}].name", f"duplicate volume name {name!r}")
        if name not in mounted:
            fail(f"{POD}.volumes[{i}].name", f"volume {name!r} is not mounted")
        names.add(name)
        if "emptyDir" in declared:
            check_empty_dir(declared["emptyDir"], f"{POD}.volumes[{i}].emptyDir")
    return names


def check_container(container: Mapping[str, Any], path: str, volumes: set[str]) -> None:
    if container.get("name") in RESERVED_CONTAINER_NAMES:
        fail(f"{path}.name", f"{container['name']!r} is a reserved container name")
    image = container.get("image")
    if not isinstance(image, str) or not image:
        fail(f"{path}.image", "is required")
    problem = image_problem(image)
    if problem:
        fail(f"{path}.image", f"{image!r} does not parse as an image reference: {problem}")
    port = check_ports(container.get("ports", []), f"{path}.ports")
    for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe_name in container:
            check_probe(container[probe_name], f"{path}.{probe_name}", port)
    for i, variable in enumerate(container.get("env", [])):
        entry = as_mapping(variable, f"{path}.env[{i}]")
        name = entry.get("name")
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            fail(f"{path}.env[{i}].name", f"{name!r} is not a valid environment variable name")
        if name in RESERVED_ENV:
            fail(f"{path}.env[{i}].name", f"{name} is reserved (Knative sets it)")
        if "value" in entry and not isinstance(entry["value"], str):
            fail(f"{path}.env[{i}].value", f"{entry['value']!r} must be a string")
        if "valueFrom" in entry:
            if entry.get("value"):
                fail(f"{path}.env[{i}].valueFrom", "may not be set together with a value")
            check_env_source(entry["valueFrom"], f"{path}.env[{i}].valueFrom")
    check_resources(
        as_mapping(container.get("resources", {}), f"{path}.resources"), f"{path}.resources"
    )
    check_security_context(container.get("securityContext"), f"{path}.securityContext")
    paths: set[str] = set()
    for i, mount in enumerate(container.get("volumeMounts", [])):
        entry = as_mapping(mount, f"{path}.volumeMounts[{i}]")
        name, mount_path = entry.get("name"), entry.get("mountPath")
        if name not in volumes:
            fail(f"{path}.volumeMounts[{i}].name", f"{name!r} is not a volume of the pod")
        where = f"{path}.volumeMounts[{i}].mountPath"
        if not isinstance(mount_path, str) or not mount_path.startswith("/"):
            fail(where, f"{mount_path!r} must be an absolute path")
        clean = posixpath.normpath(mount_path)
        clean = "/" + clean.lstrip("/")  # normpath keeps a leading "//"; Go's path.Clean does not
        if clean in RESERVED_MOUNT_PATHS:
            fail(where, f"{clean!r} is a reserved path")
        if clean in paths:
            fail(where, f"{mount_path!r} must be unique")
        paths.add(clean)


def check_env_source(source: Any, path: str) -> None:
    """One source; Knative allows Secret and ConfigMap keys (the others behind a flag)."""
    chosen = [name for name in ENV_SOURCES if name in as_mapping(source, path)]
    if len(chosen) != 1:
        fail(path, f"exactly one of {', '.join(ENV_SOURCES)} is expected, got {chosen}")
    kind = chosen[0]
    if kind in FLAGGED_ENV_SOURCES:
        fail(
            f"{path}.{kind}",
            "needs Knative's feature flag kubernetes.podspec-fieldref; govfn does not use it",
        )
    selector = as_mapping(source[kind], f"{path}.{kind}")
    name, key = selector.get("name"), selector.get("key")
    if not isinstance(name, str) or len(name) > 253 or not DNS1123_SUBDOMAIN.fullmatch(name):
        fail(f"{path}.{kind}.name", f"{name!r} is not a DNS-1123 subdomain")
    if not isinstance(key, str) or len(key) > 253 or not CONFIG_KEY.fullmatch(key):
        fail(f"{path}.{kind}.key", f"{key!r} must be letters, digits, '-', '_' or '.'")


def check_empty_dir(source: Any, path: str) -> None:
    medium = as_mapping(source, path).get("medium", "")
    if medium not in ("", "Memory"):
        fail(f"{path}.medium", f"{medium!r} must be empty or 'Memory'")
    limit = as_mapping(source, path).get("sizeLimit")
    if limit is None:
        return
    quantity = parse_quantity(limit)
    if quantity is None or quantity < 0:
        fail(
            f"{path}.sizeLimit",
            f"{limit!r} is not a quantity (write it as a string such as '1Gi')",
        )


def check_ports(ports: Any, path: str) -> int:
    """Check the ports and return the container port (8080 when none is declared)."""
    if not isinstance(ports, list):
        fail(path, "must be a list")
    if len(ports) > 1:
        fail(path, f"at most one port is allowed, got {len(ports)}")
    if not ports:
        return 8080
    port = as_mapping(ports[0], f"{path}[0]")
    if port.get("name", "") not in PORT_NAMES:
        fail(f"{path}[0].name", f"{port.get('name')!r} must be one of 'http1', 'h2c' or empty")
    if port.get("protocol", "TCP") != "TCP":
        fail(f"{path}[0].protocol", f"{port.get('protocol')!r} must be TCP")
    number = port.get("containerPort", 8080)
    check_int_range(number, f"{path}[0].containerPort", 1, 65535)
    if number in RESERVED_PORTS:
        fail(f"{path}[0].containerPort", f"{number} is reserved")
    return int(number)


def check_probe(probe: Any, path: str, port: int) -> None:
    handlers = [name for name in PROBE_HANDLERS if name in as_mapping(probe, path)]
    if len(handlers) != 1:
        fail(
            path, f"exactly one handler of {', '.join(PROBE_HANDLERS)} is expected, got {handlers}"
        )
    handler = as_mapping(probe[handlers[0]], f"{path}.{handlers[0]}")
    if "port" in handler and handler["port"] not in (port, str(port)):
        fail(
            f"{path}.{handlers[0]}.port",
            f"{handler['port']!r} must match the container port {port}",
        )


def check_resources(resources: Mapping[str, Any], path: str) -> None:
    parsed: dict[str, dict[str, Any]] = {}
    for part in ("requests", "limits"):
        for name, value in as_mapping(resources.get(part, {}), f"{path}.{part}").items():
            quantity = parse_quantity(value)
            if quantity is None or quantity < 0:
                fail(
                    f"{path}.{part}.{name}",
                    f"{value!r} is not a quantity (write it as a string such as '100m' or '256Mi')",
                )
            parsed.setdefault(part, {})[name] = quantity
    for name, request in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(name)
        if limit is not None and request > limit:
            fail(f"{path}.requests.{name}", f"{resources['requests'][name]!r} is above the limit")


def check_security_context(context: Any, path: str) -> None:
    """The restricted Pod Security Standard, and the read-only root filesystem govfn uses."""
    ctx = as_mapping(context, path)
    if ctx.get("runAsNonRoot") is not True:
        fail(f"{path}.runAsNonRoot", "must be true (restricted Pod Security Standard)")
    if ctx.get("allowPrivilegeEscalation") is not False:
        fail(f"{path}.allowPrivilegeEscalation", "must be false (restricted Pod Security Standard)")
    if ctx.get("privileged", False) is not False:
        fail(f"{path}.privileged", "must be false")
    drop = as_mapping(ctx.get("capabilities", {}), f"{path}.capabilities").get("drop", [])
    if "ALL" not in drop:
        fail(f"{path}.capabilities.drop", "must contain ALL (restricted Pod Security Standard)")
    added = [cap for cap in ctx.get("capabilities", {}).get("add", []) if cap != "NET_BIND_SERVICE"]
    if added:
        fail(f"{path}.capabilities.add", f"{added} not allowed (restricted Pod Security Standard)")
    seccomp = as_mapping(ctx.get("seccompProfile", {}), f"{path}.seccompProfile").get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        fail(f"{path}.seccompProfile.type", f"{seccomp!r} must be RuntimeDefault or Localhost")
    if ctx.get("runAsUser") == 0:
        fail(f"{path}.runAsUser", "0 (root) is not allowed (restricted Pod Security Standard)")
    if ctx.get("readOnlyRootFilesystem") is not True:
        fail(f"{path}.readOnlyRootFilesystem", "must be true (the ledger lives in an emptyDir)")
