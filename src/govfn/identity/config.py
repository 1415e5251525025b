"""What a pod verifies senders against: read from GOVFN_OIDC_* by `Settings`.

GOVFN_OIDC_ISSUER          where to discover the issuer (its `issuer` may differ)
GOVFN_OIDC_AUDIENCE        what `aud` must contain (the Trigger's subscriber audience)
GOVFN_EVENT_SENDERS        comma-separated subjects allowed; `prefix*` allows a prefix;
                           unset: any valid token
GOVFN_SERVICE_ACCOUNT_DIR  the pod's token and CA bundle, used to read discovery and keys
                           (default /var/run/secrets/kubernetes.io/serviceaccount)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class Sender(NamedTuple):
    """Who sent an event: the token's issuer and subject."""

    iss: str
    sub: str


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer_url: str
    audience: str
    senders: tuple[str, ...] = ()  # empty: every valid token
    service_account_dir: Path = SERVICE_ACCOUNT_DIR

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OidcConfig | None:
        """None without GOVFN_OIDC_ISSUER; ValueError says what else to set."""
        issuer = (env.get("GOVFN_OIDC_ISSUER") or "").strip().rstrip("/")
        if not issuer:
            return None
        audience = (env.get("GOVFN_OIDC_AUDIENCE") or "").strip()
        if not audience:
            raise ValueError(
                "GOVFN_OIDC_ISSUER is set but GOVFN_OIDC_AUDIENCE is not: set it to the "
                "audience of the function's Triggers (spec.subscriber.audience)"
            )
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"GOVFN_OIDC_ISSUER must be an https:// URL, got {issuer!r}")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError(
                f"GOVFN_OIDC_ISSUER {issuer!r} is http:// on a host that is not loopback: "
                "use https:// (keys read in the clear could be replaced)"
            )
        senders = tuple(
            s.strip() for s in env.get("GOVFN_EVENT_SENDERS", "").split(",") if s.strip()
        )
        directory = env.get("GOVFN_SERVICE_ACCOUNT_DIR") or str(SERVICE_ACCOUNT_DIR)
        return cls(issuer, audience, senders, Path(directory))


def allowed(subject: str, senders: tuple[str, ...]) -> bool:
    """Whether `senders` allow `subject`: an exact subject, or a prefix ending in `*`
    (as Knative EventPolicy's `from[].sub`); no senders allow every subject."""
    if not senders:
        return True
    for sender in senders:
        if sender.endswith("*"):
            if subject.startswith(sender[:-1]):
                return True
        elif subject == sender:
            return True
    return False


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
