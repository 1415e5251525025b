"""Who may use the management routes that run code (`invoke`, `dispatch`) or show what the
Chronicle holds of the events (the lineage routes: event ids, sources, subjects):
loopback clients with `--dev`, otherwise bearers of GOVFN_API_TOKEN, compared in constant time."""

from __future__ import annotations

import hmac
import ipaddress

from govfn.problem import HttpProblem
from govfn.receiver.config import HttpConfig

_CHALLENGE = [("WWW-Authenticate", 'Bearer realm="govfn"')]
DIRECT_INVOKE = "the direct-invoke API"
LINEAGE = "the lineage API"


def is_loopback(address: str | None) -> bool:
    """Whether `address` (an IP address, or a host name as --host takes) is loopback."""
    if address == "localhost":
        return True
    try:
        parsed = ipaddress.ip_address((address or "").strip("[]"))
    except ValueError:
        return False
    mapped = getattr(parsed, "ipv4_mapped", None)
    return bool(parsed.is_loopback or (mapped is not None and mapped.is_loopback))


def authorize(
    config: HttpConfig,
    authorization: str | None,
    what: str = DIRECT_INVOKE,
    *,
    remote_addr: str | None = None,
) -> None:
    """Return if the request may use `what`; raise 401 or 403 otherwise. `--dev` opens it to
    clients on loopback (`remote_addr`; None: in process, no peer at all), not to other
    hosts."""
    if config.dev and (remote_addr is None or is_loopback(remote_addr)):
        return
    if not authorization:
        raise HttpProblem(
            401,
            f"{what} needs Authorization: Bearer <GOVFN_API_TOKEN>",
            attribute="authorization",
            extra_headers=_CHALLENGE,
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HttpProblem(
            401,
            "Authorization must use the Bearer scheme",
            attribute="authorization",
            extra_headers=_CHALLENGE,
        )
    if config.api_token is None:
        raise HttpProblem(
            403,
            f"{what} is closed: serve with --dev or set GOVFN_API_TOKEN",
            attribute="authorization",
        )
    if not hmac.compare_digest(token.strip().encode("utf-8"), config.api_token.encode("utf-8")):
        raise HttpProblem(403, "the bearer token is not valid", attribute="authorization")
