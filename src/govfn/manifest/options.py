"""`ManifestOptions`: everything that shapes the rendered Knative objects, in one frozen value.

Options are checked for type and shape here (an int where an int belongs, a known
visibility, a parseable dead-letter sink); whether Knative accepts the resulting object is
`validate.py`'s job, so each rule lives in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from govfn.function import FunctionPlugin
from govfn.manifest.checks import CONFIG_KEY
from govfn.manifest.errors import ManifestError
from govfn.manifest.oidc import check_issuer, check_senders
from govfn.manifest.quantity import parse_quantity
from govfn.names import DNS1123_SUBDOMAIN

VISIBILITIES = ("cluster-local", "public")
BACKOFF_POLICIES = ("linear", "exponential")

DEFAULT_REQUESTS = {"cpu": "100m", "memory": "128Mi"}
DEFAULT_LIMITS = {"cpu": "1", "memory": "256Mi"}
# The ledger volume's cap: ~800k invocations of SQLite ledger at ~1.35 kB each, or as long
# an outage's spool on PostgreSQL. Past it the kubelet evicts the pod, not the node.
DEFAULT_VAR_SIZE_LIMIT = "1Gi"
DEFAULT_SECRET_KEY = "uri"
NO_SINK = "none"

_SINK_KINDS = {
    "ksvc": ("serving.knative.dev/v1", "Service"),
    "broker": ("eventing.knative.dev/v1", "Broker"),
    "channel": ("messaging.knative.dev/v1", "Channel"),
    "service": ("v1", "Service"),
}


def parse_sink(value: Any, field_name: str = "delivery.deadLetterSink") -> dict[str, Any]:
    """A dead-letter sink as Knative wants it: `{uri: ...}` or `{ref: {...}}`.

    Accepts a URL, `ksvc:NAME` / `broker:NAME` / `channel:NAME` / `service:NAME`, or the
    mapping itself (from a config file).
    """
    if isinstance(value, Mapping):
        if set(value) - {"ref", "uri"} or not value:
            raise ManifestError(field_name, f"expected {{ref: ...}} or {{uri: ...}}, got {value!r}")
        return {key: value[key] for key in sorted(value)}
    if not isinstance(value, str) or not value:
        raise ManifestError(field_name, f"expected a URL or KIND:NAME, got {value!r}")
    if value.startswith(("http://", "https://")):
        return {"uri": value}
    kind, _, name = value.partition(":")
    if kind not in _SINK_KINDS or not name:
        raise ManifestError(
            field_name,
            f"{value!r} is neither an http(s) URL nor one of "
            f"{', '.join(k + ':NAME' for k in _SINK_KINDS)}",
        )
    api_version, kind_name = _SINK_KINDS[kind]
    return {"ref": {"apiVersion": api_version, "kind": kind_name, "name": name}}


def parse_chronicle_sink(value: str | None, broker: str) -> dict[str, Any] | None:
    """Where the Chronicle's records go (the SinkBinding's `spec.sink`); None for `none`.

    Accepts `broker:NAME`, an http(s) URL, `none`, or None for the Triggers' broker.
    """
    field_name = "chronicle_sink"
    if value is None:
        value = f"broker:{broker}"
    if not isinstance(value, str) or not value:
        raise ManifestError(field_name, f"expected broker:NAME, a URL or none, got {value!r}")
    if value == NO_SINK:
        return None
    if value.startswith(("http://", "https://")):
        return {"uri": value}
    kind, _, name = value.partition(":")
    if kind != "broker" or not name:
        raise ManifestError(
            field_name, f"{value!r} is neither broker:NAME, an http(s) URL nor none"
        )
    if len(name) > 253 or not DNS1123_SUBDOMAIN.fullmatch(name):
        raise ManifestError(field_name, f"Broker name {name!r} is not a DNS-1123 subdomain")
    return {"ref": {"apiVersion": _SINK_KINDS["broker"][0], "kind": "Broker", "name": name}}


def parse_secret_ref(value: str) -> tuple[str, str]:
    """`NAME[:KEY]` -> (name, key); the key defaults to `uri`."""
    field_name = "database_secret"
    if not isinstance(value, str) or not value:
        raise ManifestError(field_name, f"expected NAME[:KEY], got {value!r}")
    name, sep, key = value.partition(":")
    if not sep:
        key = DEFAULT_SECRET_KEY
    if len(name) > 253 or not DNS1123_SUBDOMAIN.fullmatch(name):
        raise ManifestError(
            field_name,
            f"Secret name {name!r} is not a DNS-1123 subdomain (lower case, digits, '-', '.')",
        )
    if len(key) > 253 or not CONFIG_KEY.fullmatch(key):
        raise ManifestError(
            field_name, f"Secret key {key!r} must be letters, digits, '-', '_' or '.'"
        )
    return name, key


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """A Trigger's `spec.delivery`; all unset means the Trigger inherits the Broker's.

    The operator's (flags, config file); a function declares its own with `govfn.Delivery`,
    which `function_delivery` merges under this one."""

    retry: int | None = None
    backoff_policy: str | None = None
    backoff_delay: str | None = None
    dead_letter_sink: dict[str, Any] | None = None
    timeout: str | None = None

    def __post_init__(self) -> None:
        _check_int("delivery.retry", self.retry)
        if self.backoff_policy is not None and self.backoff_policy not in BACKOFF_POLICIES:
            raise ManifestError(
                "delivery.backoffPolicy",
                f"{self.backoff_policy!r} is not one of {', '.join(BACKOFF_POLICIES)}",
            )
        _check_str("delivery.backoffDelay", self.backoff_delay)
        _check_str("delivery.timeout", self.timeout)
        if self.dead_letter_sink is not None:
            object.__setattr__(self, "dead_letter_sink", parse_sink(self.dead_letter_sink))

    def to_spec(self) -> dict[str, Any] | None:
        spec: dict[str, Any] = {}
        if self.dead_letter_sink is not None:
            spec["deadLetterSink"] = self.dead_letter_sink
        if self.retry is not None:
            spec["retry"] = self.retry
        if self.backoff_policy is not None:
            spec["backoffPolicy"] = self.backoff_policy
        if self.backoff_delay is not None:
            spec["backoffDelay"] = self.backoff_delay
        if self.timeout is not None:
            spec["timeout"] = self.timeout
        return spec or None


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestOptions:
    """How to render a function's Knative Service and Triggers. Only `image` is required."""

    image: str
    namespace: str | None = None
    broker: str = "default"
    app: str = "govfn"
    name_prefix: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    min_scale: int | None = None
    max_scale: int | None = None
    target_concurrency: int | None = None
    container_concurrency: int | None = None
    timeout_seconds: int | None = None
    requests: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_REQUESTS))
    limits: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    service_account: str | None = None
    visibility: str = "cluster-local"
    delivery: Delivery = field(default_factory=Delivery)
    filters: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    allow_reply_loops: bool = False
    event_types: bool = False  # an EventType per trigger type of each typed function
    chronicle_sink: str | None = None  # None: the Triggers' broker
    database_secret: str | None = None  # NAME[:KEY] of a Secret holding the libpq URI
    var_size_limit: str = DEFAULT_VAR_SIZE_LIMIT
    oidc_issuer: str | None = None  # None: receivers verify no Knative token
    event_senders: tuple[str, ...] = ()  # subjects, or `triggers`; empty: any valid token

    def __post_init__(self) -> None:
        if not isinstance(self.image, str) or not self.image.strip():
            raise ManifestError("image", "an image is required (--image)")
        for name in ("namespace", "service_account"):
            _check_str(name, getattr(self, name))
        for name in ("broker", "app", "name_prefix"):
            if not isinstance(getattr(self, name), str):
                raise ManifestError(name, f"must be a string, got {getattr(self, name)!r}")
        for name in ("broker", "app"):
            if not getattr(self, name):
                raise ManifestError(name, "must not be empty")
        for name in (
            "min_scale",
            "max_scale",
            "target_concurrency",
            "container_concurrency",
            "timeout_seconds",
        ):
            _check_int(name, getattr(self, name))
        if self.visibility not in VISIBILITIES:
            raise ManifestError(
                "visibility", f"{self.visibility!r} is not one of {', '.join(VISIBILITIES)}"
            )
        if isinstance(self.delivery, Mapping):
            object.__setattr__(self, "delivery", delivery_from_mapping(self.delivery))
        elif not isinstance(self.delivery, Delivery):
            raise ManifestError("delivery", f"expected a mapping, got {self.delivery!r}")
        for name in ("env", "requests", "limits", "filters", "labels", "annotations"):
            object.__setattr__(self, name, _string_map(name, getattr(self, name)))
        for name in ("allow_reply_loops", "event_types"):
            if not isinstance(getattr(self, name), bool):
                raise ManifestError(name, f"must be true or false, got {getattr(self, name)!r}")
        self.chronicle_sink_destination()
        self.database_secret_ref()
        size = parse_quantity(self.var_size_limit) if isinstance(self.var_size_limit, str) else None
        if size is None or size <= 0:
            raise ManifestError(
                "var_size_limit",
                f"{self.var_size_limit!r} is not a positive quantity string such as '1Gi'",
            )
        if self.oidc_issuer is not None:
            check_issuer(self.oidc_issuer)
        object.__setattr__(self, "event_senders", check_senders(self.event_senders))
        if self.event_senders and self.oidc_issuer is None:
            raise ManifestError(
                "event_senders", "needs --oidc-issuer: without it no sender is verified"
            )

    def chronicle_sink_destination(self) -> dict[str, Any] | None:
        """The SinkBinding's `spec.sink` (None: render no SinkBinding)."""
        return parse_chronicle_sink(self.chronicle_sink, self.broker)

    def database_secret_ref(self) -> tuple[str, str] | None:
        """(Secret name, key) that GOVFN_CHRONICLE is read from, or None for the file."""
        if self.database_secret is None:
            return None
        return parse_secret_ref(self.database_secret)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ManifestOptions:
        """Options from a config-file mapping; keys may use `-` or `_`, unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            name = str(key).replace("-", "_")
            if name == "resources" and isinstance(value, Mapping):
                for part in ("requests", "limits"):
                    if part in value:
                        kwargs[part] = value[part]
                unknown = set(value) - {"requests", "limits"}
                if unknown:
                    raise ManifestError(f"resources.{sorted(unknown)[0]}", "unknown key")
                continue
            if name not in known:
                raise ManifestError(str(key), "unknown option")
            kwargs[name] = value
        return cls(**kwargs)


def delivery_from_mapping(values: Mapping[str, Any]) -> Delivery:
    aliases = {
        "retry": "retry",
        "backoffPolicy": "backoff_policy",
        "backoff_policy": "backoff_policy",
        "backoff-policy": "backoff_policy",
        "backoffDelay": "backoff_delay",
        "backoff_delay": "backoff_delay",
        "backoff-delay": "backoff_delay",
        "deadLetterSink": "dead_letter_sink",
        "dead_letter_sink": "dead_letter_sink",
        "dead-letter-sink": "dead_letter_sink",
        "timeout": "timeout",
    }
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in aliases:
            raise ManifestError(f"delivery.{key}", "unknown delivery option")
        kwargs[aliases[key]] = value
    return Delivery(**kwargs)


def function_delivery(plugin: FunctionPlugin, operator: Delivery) -> Delivery:
    """The delivery of `plugin`'s Triggers: what the function declares (`govfn.Delivery`),
    each field the operator set (flags, config file) overriding the function's."""
    declared = declared_delivery(plugin)
    if declared is None:
        return operator
    overrides = {
        name: getattr(operator, name)
        for name in DELIVERY_FIELDS
        if getattr(operator, name) is not None
    }
    values = {name: getattr(declared, name) for name in DELIVERY_FIELDS}
    return Delivery(**{**values, **overrides})


def declared_delivery(plugin: FunctionPlugin) -> Delivery | None:
    """What `plugin` declares, checked with the rules of the flags; None when nothing."""
    return None if plugin.delivery is None else Delivery(**plugin.delivery.fields())


DELIVERY_FIELDS = tuple(f.name for f in fields(Delivery))


def _check_int(name: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ManifestError(name, f"must be an integer, got {value!r}")


def _check_str(name: str, value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ManifestError(name, f"must be a non-empty string, got {value!r}")


def _string_map(name: str, value: object) -> dict[str, str]:
    """A copy of `value` with string keys and values: Kubernetes wants strings, not `1`."""
    if not isinstance(value, Mapping):
        raise ManifestError(name, f"expected a mapping, got {value!r}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ManifestError(
                f"{name}[{key}]", f"keys and values must be strings, got {item!r} (quote it)"
            )
    return dict(value)
