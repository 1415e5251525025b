"""A local OIDC issuer on loopback: discovery and a key set served over HTTP, tokens signed
with PyJWT, as a Kubernetes API server issues service-account tokens (RS256 with a `kid`;
ES256 too, which other issuers use). The keys can be rotated, and the issuer stopped."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://kubernetes.default.svc.cluster.local"  # what discovery reports: not the URL
TRIGGER = "system:serviceaccount:default:billing-trigger-oidc-eventing.knative.dev-trigger"


class Key:
    def __init__(self, kid: str, alg: str = "RS256") -> None:
        self.kid, self.alg = kid, alg
        if alg == "RS256":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            algorithm: Any = jwt.algorithms.RSAAlgorithm
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            algorithm = jwt.algorithms.ECAlgorithm
        self.jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        self.jwk.update(kid=kid, use="sig", alg=alg)


class Issuer:
    def __init__(self) -> None:
        self.keys = [Key("rsa-1")]
        self.requests: list[tuple[str, str | None]] = []  # (path, Authorization)
        self.required_token: str | None = None  # anonymous discovery is refused when set
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def token(
        self,
        sub: str = TRIGGER,
        aud: str | list[str] = "serving.knative.dev/service/default/billing",
        *,
        key: Key | None = None,
        lifetime_s: float = 600,
        **claims: Any,
    ) -> str:
        key = key or self.keys[0]
        now = int(time.time())
        payload = {"iss": ISSUER, "sub": sub, "aud": aud, "iat": now, "nbf": now}
        payload["exp"] = now + lifetime_s
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                issuer.requests.append((self.path, auth))
                if issuer.required_token and auth != f"Bearer {issuer.required_token}":
                    self._send(403, {"kind": "Status", "code": 403})
                elif self.path == "/.well-known/openid-configuration":
                    self._send(200, {"issuer": ISSUER, "jwks_uri": f"{issuer.url}/openid/v1/jwks"})
                elif self.path == "/openid/v1/jwks":
                    self._send(200, {"keys": [key.jwk for key in issuer.keys]})
                else:
                    self._send(404, {})

            def _send(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def running_issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    thread = threading.Thread(target=issuer.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        issuer.server.shutdown()
        issuer.server.server_close()
        thread.join(timeout=10)
