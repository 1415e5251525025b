"""The real kube-apiserver fixture as the token issuer of sender identity: TokenRequest
tokens, the issuer's discovery document and keys read with a pod's own token (anonymous is
refused), and `iss` = the configured issuer, not the URL the document was read from."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from support.kube_apiserver import ISSUER, KubeApiServer
from support.kube_fixtures import TokenFor

pytestmark = pytest.mark.slow


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verified_claims(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The claims of an RS256 JWT whose signature one of `jwks`'s keys (by kid) verifies."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url(header_b64))
    assert header["alg"] == "RS256"
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    public = rsa.RSAPublicNumbers(
        int.from_bytes(b64url(key["e"]), "big"), int.from_bytes(b64url(key["n"]), "big")
    ).public_key()
    public.verify(
        b64url(signature_b64),
        f"{header_b64}.{payload_b64}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    claims: dict[str, Any] = json.loads(b64url(payload_b64))
    return claims


def test_issuer_discovery_keys_and_a_broker_token(
    kube_apiserver: KubeApiServer, kube_namespace: str, kube_token: TokenFor
) -> None:
    issuer = kube_apiserver.issuer()
    assert issuer.issuer == ISSUER == "https://kubernetes.default.svc.cluster.local"
    assert issuer.ca_file.is_file()

    anonymous, _ = kube_apiserver.get_json(issuer.discovery_url)
    assert anonymous == 403
    pod_token = kube_token("function")  # the pod's own token, for the API server
    status, discovery = kube_apiserver.get_json(issuer.discovery_url, token=pod_token)
    assert status == 200, discovery
    assert discovery["issuer"] == ISSUER  # not the URL it was read from
    assert discovery["jwks_uri"].startswith(kube_apiserver.url + "/")  # the server's own address
    assert kube_apiserver.get_json(discovery["jwks_uri"])[0] == 403
    status, jwks = kube_apiserver.get_json(discovery["jwks_uri"], token=pod_token)
    assert status == 200 and jwks["keys"], jwks

    audience = "http://echo.functions.svc.cluster.local"
    broker_token = kube_token("mt-broker-filter", audience=audience)
    claims = verified_claims(broker_token, jwks)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == [audience]
    assert claims["sub"] == f"system:serviceaccount:{kube_namespace}:mt-broker-filter"
    assert claims["exp"] - time.time() <= 600 + 60
    # a token for another audience is not one for the API server
    assert kube_apiserver.get_json(issuer.discovery_url, token=broker_token)[0] == 401

    header, payload, signature = broker_token.split(".")
    forged = json.loads(b64url(payload)) | {"sub": "system:serviceaccount:x:admin"}
    forged_b64 = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    with pytest.raises(InvalidSignature):
        verified_claims(f"{header}.{forged_b64}.{signature}", jwks)
