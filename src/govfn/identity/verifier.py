"""`SenderVerifier`: a delivery's `Authorization` header in, its `Sender` out, or a refusal.

    no / malformed / invalid token      → 401 (WWW-Authenticate: Bearer), the function not run
    a sender GOVFN_EVENT_SENDERS denies → 403
    the issuer or its keys unreachable  → 503 with Retry-After (Knative retries it)

As Knative's verifier: `iss` equals the issuer discovery reports, `aud` contains the
audience, `exp` is required, `exp`/`nbf` with at most `LEEWAY_S` of leeway, RS256 or ES256
only, the key chosen by `kid` and of the type the algorithm needs. A token accepted once
is kept (until it expires, at most `CACHE_SIZE` of them): a broker reuses its token for
every delivery until it expires, so the signature is checked once, not per event, and a
kept token's Authorization value is looked up as it arrives (`accepted`), not parsed again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import jwt

from govfn.identity.config import OidcConfig, Sender, allowed
from govfn.identity.issuer import KEY_TYPES, Issuer, IssuerUnreachable
from govfn.identity.refusal import SenderRefused

LEEWAY_S = 60
MAX_TOKEN_BYTES = 6144  # under the servers' 8190-byte header field limit, over any SA token
CACHE_SIZE = 4096


class SenderVerifier:
    def __init__(
        self,
        config: OidcConfig,
        issuer: Issuer | None = None,
        clock: Callable[[], float] = time.time,  # what kept tokens' expiry is checked against
    ) -> None:
        self.config = config
        self.issuer = issuer or Issuer(config)
        self._clock = clock
        # an accepted Authorization value -> (its sender, the time it stops being accepted)
        self._accepted: dict[str, tuple[Sender, float]] = {}

    def accepted(self, authorization: str | None) -> Sender | None:
        """The sender of a token accepted before and not expired since; no I/O, nothing
        parsed: every delivery but a token's first takes this path alone."""
        if authorization is None:
            return None
        kept = self._accepted.get(authorization)
        if kept is None:
            return None
        if kept[1] > self._clock():
            return kept[0]
        self._accepted.pop(authorization, None)
        return None

    async def verify(self, authorization: str | None) -> Sender:
        kept = self.accepted(authorization)
        if kept is not None:
            return kept
        if not authorization:
            raise SenderRefused(401, "no Authorization header: a bearer token is required")
        token = _bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.exceptions.PyJWTError:
            raise SenderRefused(401, "the bearer token is not a JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in KEY_TYPES:
            raise SenderRefused(401, f"token algorithm {str(alg)[:20]!r} is not RS256 or ES256")
        if kid is not None and not isinstance(kid, str):
            raise SenderRefused(401, "the token's key id (kid) is not a string")
        found = self.issuer.known(kid)
        if found is None:
            try:
                found = await asyncio.to_thread(self.issuer.refresh, kid)
            except IssuerUnreachable as exc:
                raise SenderRefused(503, f"cannot read the OIDC issuer's keys: {exc}") from None
        if found is None:
            raise SenderRefused(401, "the token's signing key is not among the issuer's keys")
        key, entry = found
        kty, crv = KEY_TYPES[alg]
        if entry.get("kty") != kty or (crv is not None and entry.get("crv") != crv):
            raise SenderRefused(401, f"the token's key is not an {alg} key")
        claims = self._decode(token, key, alg)
        sender = Sender(claims["iss"], claims["sub"])
        if not allowed(sender.sub, self.config.senders):
            raise SenderRefused(403, f"sender {sender.sub!r} is not allowed (GOVFN_EVENT_SENDERS)")
        if len(self._accepted) >= CACHE_SIZE:
            self._accepted.pop(next(iter(self._accepted)))
        self._accepted[authorization] = (sender, float(claims["exp"]) + LEEWAY_S)
        return sender

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        assert self.issuer.issuer is not None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.config.audience,
                issuer=self.issuer.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.exceptions.ExpiredSignatureError:
            raise SenderRefused(401, "the token has expired") from None
        except jwt.exceptions.ImmatureSignatureError:
            raise SenderRefused(401, "the token is not valid yet (nbf)") from None
        except jwt.exceptions.InvalidAudienceError:
            raise SenderRefused(
                401, f"the token is not for this audience ({self.config.audience})"
            ) from None
        except jwt.exceptions.InvalidIssuerError:
            raise SenderRefused(401, f"the token's issuer is not {self.issuer.issuer}") from None
        except jwt.exceptions.MissingRequiredClaimError as exc:
            raise SenderRefused(401, f"the token has no {exc.claim!r} claim") from None
        except jwt.exceptions.InvalidSignatureError:
            raise SenderRefused(401, "the token's signature does not verify") from None
        except jwt.exceptions.PyJWTError as exc:
            raise SenderRefused(401, f"the token is not valid: {_first_line(exc)}") from None
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("iss"), str):
            raise SenderRefused(401, "the token's sub and iss must be strings")
        return claims


def _bearer(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SenderRefused(401, "the Authorization header is not 'Bearer <token>'")
    token = token.strip()
    if len(token) > MAX_TOKEN_BYTES:
        raise SenderRefused(401, f"the bearer token is over {MAX_TOKEN_BYTES} bytes")
    return token


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
