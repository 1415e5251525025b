"""Who may run code directly (`invoke`, `dispatch`): everyone with `--dev`, otherwise
bearers of GOVFN_API_TOKEN, compared in constant time."""

from __future__ import annotations

import hmac

from govfn.problem import HttpProblem
from govfn.receiver.config import HttpConfig

_CHALLENGE = [("WWW-Authenticate", 'Bearer realm="govfn"')]


def authorize(config: HttpConfig, authorization: str | None) -> None:
    """Return if the request may run a function; raise 401 or 403 otherwise."""
    if config.dev:
        return
    if not authorization:
        raise HttpProblem(
            401,
            "the direct-invoke API needs Authorization: Bearer <GOVFN_API_TOKEN>",
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
            "the direct-invoke API is closed: serve with --dev or set GOVFN_API_TOKEN",
            attribute="authorization",
        )
    if not hmac.compare_digest(token.strip().encode("utf-8"), config.api_token.encode("utf-8")):
        raise HttpProblem(403, "the bearer token is not valid", attribute="authorization")
