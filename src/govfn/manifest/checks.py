"""Shared checks: error raising, metadata, labels, annotations, autoscaling annotations."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

from govfn.manifest.errors import ManifestError
from govfn.names import DNS1123_LABEL, DNS1123_LABEL_MAX, DNS1123_SUBDOMAIN

RESERVED_PORTS = frozenset({8012, 8013, 8022, 8008, 9090, 9091})
RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"})
PORT_NAMES = ("", "http1", "h2c")
PROBE_HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")
FILTER_DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")
AUTOSCALING_PREFIX = "autoscaling.knative.dev/"
MAX_CONTAINER_CONCURRENCY = 1000
MAX_TIMEOUT_SECONDS = 600
INT32_MAX = 2**31 - 1

_DIGITS = re.compile(r"^[0-9]+$")
_QUALIFIED_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9]*$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")  # a key of a Secret or ConfigMap
_NUMBER = r"\d+(?:[.,]\d+)?"
DURATION = re.compile(
    rf"^P(?=.)(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?=\d)(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$"
)


def fail(path: str, message: str) -> NoReturn:
    raise ManifestError(path, message)


def as_mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        fail(path, f"expected an object, got {value!r}")
    return value


def check_qualified_key(key: object, path: str) -> None:
    if not isinstance(key, str):
        fail(path, f"key {key!r} is not a string")
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix)):
        fail(f"{path}[{key}]", f"prefix {prefix!r} is not a DNS-1123 subdomain")
    if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        fail(f"{path}[{key}]", f"name {name!r} is not a qualified name (63 chars max)")


def check_metadata(metadata: Any, path: str = "metadata") -> None:
    meta = as_mapping(metadata, path)
    name = meta.get("name")
    if (
        not isinstance(name, str)
        or len(name) > DNS1123_LABEL_MAX
        or not DNS1123_LABEL.fullmatch(name)
    ):
        fail(f"{path}.name", f"{name!r} is not a DNS-1123 label of at most 63 characters")
    namespace = meta.get("namespace")
    if namespace is not None and (
        not isinstance(namespace, str) or not DNS1123_LABEL.fullmatch(namespace)
    ):
        fail(f"{path}.namespace", f"{namespace!r} is not a DNS-1123 label")
    check_labels(meta.get("labels", {}), f"{path}.labels")
    check_annotations(meta.get("annotations", {}), f"{path}.annotations")


def check_labels(labels: Any, path: str) -> None:
    for key, value in as_mapping(labels, path).items():
        check_qualified_key(key, path)
        if not isinstance(value, str):
            fail(f"{path}[{key}]", f"value {value!r} must be a string (quote it)")
        if value and (len(value) > 63 or not _QUALIFIED_NAME.fullmatch(value)):
            fail(f"{path}[{key}]", f"value {value!r} is not a valid label value")


def check_annotations(annotations: Any, path: str) -> None:
    for key, value in as_mapping(annotations, path).items():
        check_qualified_key(key, path)
        if not isinstance(value, str):
            fail(f"{path}[{key}]", f"value {value!r} must be a string (quote it)")


def check_int_range(value: Any, path: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        fail(path, f"{value!r} must be an integer")
    if not low <= value <= high:
        fail(path, f"{value} is out of range [{low}, {high}]")


def check_autoscaling(annotations: Mapping[str, Any], path: str) -> None:
    scales: dict[str, int] = {}
    for key in ("min-scale", "max-scale", "initial-scale"):
        value = annotations.get(AUTOSCALING_PREFIX + key)
        if value is None:
            continue
        if not isinstance(value, str) or not _DIGITS.fullmatch(value) or int(value) > INT32_MAX:
            fail(
                f"{path}[{AUTOSCALING_PREFIX}{key}]",
                f"{value!r} must be a non-negative integer string of at most {INT32_MAX}",
            )
        scales[key] = int(value)
    low, high = scales.get("min-scale", 0), scales.get("max-scale", 0)
    if high and low > high:
        fail(f"{path}[{AUTOSCALING_PREFIX}max-scale]", f"{high} is below min-scale {low}")
    target = annotations.get(AUTOSCALING_PREFIX + "target")
    if target is not None:
        try:
            ok = float(target) >= 0.01
        except (TypeError, ValueError):
            ok = False
        if not ok:
            fail(f"{path}[{AUTOSCALING_PREFIX}target]", f"{target!r} must be a number >= 0.01")
