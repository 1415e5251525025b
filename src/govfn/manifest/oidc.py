"""Knative sender identity (OIDC) in the rendered objects: audiences and senders.

With `--oidc-issuer`, each function's receiver verifies Knative's tokens (GOVFN_OIDC_*), and
each of its Triggers names the audience its broker's filter asks a token for
(`spec.subscriber.audience`: a Knative Service publishes none of its own). The audience is
shaped like the ones Knative publishes, `<group>/<kind>/<namespace>/<name>`:
`serving.knative.dev/service/<namespace>/<service>`, so each function has its own.

A Trigger's deliveries carry a token of the Trigger's own OIDC identity, the service account
`<trigger>-oidc-eventing.knative.dev-trigger` (Knative's
`auth.GetOIDCServiceAccountNameForResource`: `kmeta.ChildName(name, "-oidc-<group>-<Kind>")`,
lower-cased). `--event-sender triggers` allows exactly those subjects for each function.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from govfn.identity.config import is_loopback
from govfn.manifest.errors import ManifestError
from govfn.manifest.names import service_name, trigger_name

if TYPE_CHECKING:
    from govfn.function import FunctionPlugin

SERVICE_AUDIENCE = "serving.knative.dev/service"
TRIGGER_GROUP, TRIGGER_KIND = "eventing.knative.dev", "Trigger"
OWN_TRIGGERS = "triggers"  # --event-sender keyword: the function's own Triggers
SUBJECT_PREFIX = "system:serviceaccount:"
ENV_ISSUER = "GOVFN_OIDC_ISSUER"
ENV_AUDIENCE = "GOVFN_OIDC_AUDIENCE"
ENV_SENDERS = "GOVFN_EVENT_SENDERS"
ENV_NAMES = (ENV_AUDIENCE, ENV_ISSUER, ENV_SENDERS)

_LONGEST = 63  # kmeta.ChildName: a DNS-1123 label
_MD5_HEX = 32
_HEAD = _LONGEST - _MD5_HEX


def child_name(parent: str, suffix: str) -> str:
    """knative.dev/pkg `kmeta.ChildName`: `parent + suffix` if it fits in 63 characters, else
    a cut of `parent` and the md5 of what it stands for."""
    if len(parent) <= _LONGEST - len(suffix):
        return parent + suffix
    if _HEAD - len(suffix) <= 0:  # a long suffix: the hash of both replaces it
        digest = hashlib.md5((parent + suffix).encode("utf-8"), usedforsecurity=False)
        name = parent[:_HEAD] + digest.hexdigest()
        if len(name) < _LONGEST:
            name += suffix[: _LONGEST - len(name)]
        return name.rstrip("-")
    digest = hashlib.md5(parent.encode("utf-8"), usedforsecurity=False)
    return parent[: _HEAD - len(suffix)] + digest.hexdigest() + suffix


def trigger_service_account(trigger: str) -> str:
    """The service account whose tokens a Trigger's deliveries carry
    (`status.auth.serviceAccountName`)."""
    return child_name(trigger, f"-oidc-{TRIGGER_GROUP}-{TRIGGER_KIND}").lower()


def trigger_subject(namespace: str, trigger: str) -> str:
    """The `sub` of the tokens a Trigger's deliveries carry."""
    return f"{SUBJECT_PREFIX}{namespace}:{trigger_service_account(trigger)}"


def service_audience(namespace: str, service: str) -> str:
    """The audience a function's receiver expects (and its Triggers ask tokens for)."""
    return f"{SERVICE_AUDIENCE}/{namespace}/{service}".lower()


def check_issuer(value: object) -> str:
    """An https URL with a host (http only on loopback, as `govfn serve` accepts)."""
    field = "oidc_issuer"
    if not isinstance(value, str) or not value:
        raise ManifestError(field, f"expected an https URL, got {value!r}")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or not host or parts.scheme not in ("https", "http"):
        raise ManifestError(field, f"{value!r} is not an https URL with a host")
    if parts.scheme == "http" and not is_loopback(host):
        raise ManifestError(field, f"{value!r}: the issuer must be https (http only on loopback)")
    if parts.query or parts.fragment:
        raise ManifestError(field, f"{value!r}: an issuer URL has no query or fragment")
    return value


def check_senders(values: object) -> tuple[str, ...]:
    """Subjects as given (`triggers` kept): each exact, or a prefix ending in `*`."""
    field = "event_senders"
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, list | tuple):
        raise ManifestError(field, f"expected a list of subjects, got {values!r}")
    for value in values:
        if not isinstance(value, str) or not value:
            raise ManifestError(field, f"a subject must be a non-empty string, got {value!r}")
        if "," in value or any(c.isspace() for c in value):
            raise ManifestError(field, f"{value!r}: a subject holds no comma or white space")
        if "*" in value[:-1]:
            raise ManifestError(field, f"{value!r}: '*' may only end a subject (a prefix)")
    return tuple(values)


def expand_senders(senders: Iterable[str], namespace: str, triggers: Iterable[str]) -> str:
    """GOVFN_EVENT_SENDERS of one function: `triggers` becomes the subjects of its Triggers;
    order kept, duplicates dropped."""
    subjects: list[str] = []
    for sender in senders:
        expanded = (
            [trigger_subject(namespace, name) for name in triggers]
            if sender == OWN_TRIGGERS
            else [sender]
        )
        subjects.extend(s for s in expanded if s not in subjects)
    return ",".join(subjects)


class OidcOptions(Protocol):
    """What of `options.ManifestOptions` sender identity reads (options imports this module)."""

    @property
    def oidc_issuer(self) -> str | None: ...
    @property
    def event_senders(self) -> Sequence[str]: ...
    @property
    def name_prefix(self) -> str: ...


def oidc_env(
    options: OidcOptions, namespace: str, service: str, triggers: Sequence[str]
) -> list[tuple[str, str]]:
    """The receiver's GOVFN_OIDC_* and GOVFN_EVENT_SENDERS for the Service `service`."""
    if options.oidc_issuer is None:
        return []
    env = [
        (ENV_ISSUER, options.oidc_issuer),
        (ENV_AUDIENCE, service_audience(namespace, service)),
    ]
    if options.event_senders:
        if OWN_TRIGGERS in options.event_senders and not triggers:
            raise ManifestError(
                "event_senders",
                f"Service {service!r} has no Triggers: '{OWN_TRIGGERS}' would allow no sender",
            )
        env.append((ENV_SENDERS, expand_senders(options.event_senders, namespace, triggers)))
    return env


def helm_trigger_accounts(plugin: FunctionPlugin, options: OidcOptions) -> dict[str, Any]:
    """`triggerServiceAccounts` of a function's Helm values: the OIDC service accounts of
    its Triggers whose names Knative shortens with an md5, which Helm cannot compute."""
    if options.oidc_issuer is None:
        return {}
    service = service_name(options.name_prefix, plugin.function_id)
    names = [trigger_name(service, kind) for kind in plugin.trigger_events]
    accounts = {
        name: trigger_service_account(name)
        for name in names
        if not trigger_service_account(name).startswith(name + "-oidc-")
    }
    return {"triggerServiceAccounts": dict(sorted(accounts.items()))} if accounts else {}
