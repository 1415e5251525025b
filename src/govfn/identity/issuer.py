"""The issuer's discovery document and signing keys, read the way a pod reads them.

`<GOVFN_OIDC_ISSUER>/.well-known/openid-configuration` names the issuer (what `iss` must
equal, which on a real cluster differs from the URL) and `jwks_uri`. Both are read with the
pod's own service-account token and CA bundle when the pod has them: a real API server
answers anonymous discovery 403, and the default `system:service-account-issuer-discovery`
binding admits service accounts. Keys are fetched again when a token names a key id the
set does not have (rotation: the new set replaces the old), at most once per
`REFETCH_S`. Fetching is blocking I/O: callers run it in a thread.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import jwt

from govfn.identity.config import OidcConfig

REFETCH_S = 10.0
FETCH_TIMEOUT_S = 5.0
MAX_DOCUMENT_BYTES = 1024 * 1024
KEY_TYPES = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}  # alg -> (kty, crv)


class IssuerUnreachable(Exception):
    """Discovery or the keys could not be read; the message says where and why."""


class Issuer:
    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self.issuer: str | None = None  # as discovery reports it
        self.fetches = 0
        self._keys: dict[str | None, tuple[jwt.PyJWK, dict[str, Any]]] = {}
        self._fetched_at = -REFETCH_S
        self._lock = threading.Lock()

    def known(self, kid: str | None) -> tuple[jwt.PyJWK, dict[str, Any]] | None:
        """The key `kid` names, if the current set has it (no I/O)."""
        if self.issuer is None:
            return None
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    def refresh(self, kid: str | None) -> tuple[jwt.PyJWK, dict[str, Any]] | None:
        """The key `kid` names, fetching discovery and keys first when it is not known and
        the last fetch is `REFETCH_S` old; IssuerUnreachable when a needed fetch fails."""
        with self._lock:
            found = self.known(kid)
            due = time.monotonic() - self._fetched_at >= REFETCH_S
            if found is None and (self.issuer is None or due):
                self._fetch()
                found = self.known(kid)
            return found

    def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        self.fetches += 1
        base = self.config.issuer_url
        document = self._get_json(f"{base}/.well-known/openid-configuration")
        issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
        if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
            raise IssuerUnreachable(f"{base}: discovery names no issuer and jwks_uri")
        keys = self._get_json(jwks_uri).get("keys")
        if not isinstance(keys, list):
            raise IssuerUnreachable(f"{jwks_uri}: no key set")
        usable: dict[str | None, tuple[jwt.PyJWK, dict[str, Any]]] = {}
        for entry in keys:
            if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC"):
                continue
            try:
                usable[entry.get("kid")] = (jwt.PyJWK(entry), entry)
            except jwt.exceptions.PyJWTError:
                continue  # a key of a type or curve PyJWT cannot use
        self.issuer, self._keys = issuer, usable

    def _get_json(self, url: str) -> dict[str, Any]:
        # a kube-apiserver serves its keys as application/jwk-set+json and answers a request
        # that accepts only application/json with 406
        accept = "application/json, application/jwk-set+json"
        request = urllib.request.Request(url, headers={"Accept": accept})
        token = self._read("token")
        if token:
            request.add_header("Authorization", f"Bearer {token.strip()}")
        try:
            with urllib.request.urlopen(
                request, timeout=FETCH_TIMEOUT_S, context=self._tls()
            ) as response:
                body = response.read(MAX_DOCUMENT_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise IssuerUnreachable(f"{url}: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise IssuerUnreachable(f"{url}: {exc}") from None
        if len(body) > MAX_DOCUMENT_BYTES:
            raise IssuerUnreachable(f"{url}: answer over {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(body)
        except ValueError:
            raise IssuerUnreachable(f"{url}: answer is not JSON") from None
        if not isinstance(document, dict):
            raise IssuerUnreachable(f"{url}: answer is not a JSON object")
        return document

    def _tls(self) -> ssl.SSLContext | None:
        if not self.config.issuer_url.startswith("https:"):
            return None
        context = ssl.create_default_context()
        ca = self.config.service_account_dir / "ca.crt"
        if ca.is_file():
            context.load_verify_locations(cafile=str(ca))
        return context

    def _read(self, name: str) -> str | None:
        try:
            return (self.config.service_account_dir / name).read_text(encoding="utf-8")
        except OSError:
            return None
