"""`SenderVerifier` against a real issuer on loopback (discovery and keys over HTTP, tokens
signed by PyJWT): what it accepts, and every way a token is refused."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from govfn.identity import OidcConfig, Sender, allowed
from govfn.identity.verifier import LEEWAY_S, MAX_TOKEN_BYTES, SenderRefused, SenderVerifier

from support.oidc_issuer import ISSUER, Issuer, Key, running_issuer

AUDIENCE = "serving.knative.dev/service/default/billing"
TRIGGER = "system:serviceaccount:default:billing-trigger-oidc-eventing.knative.dev-trigger"


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as running:
        yield running


def verifier(issuer: Issuer, tmp_path: Path, **env: str) -> SenderVerifier:
    config = OidcConfig.from_env(
        {
            "GOVFN_OIDC_ISSUER": issuer.url,
            "GOVFN_OIDC_AUDIENCE": AUDIENCE,
            "GOVFN_SERVICE_ACCOUNT_DIR": str(tmp_path / "serviceaccount"),
            **env,
        }
    )
    assert config is not None
    return SenderVerifier(config)


def verify(checker: SenderVerifier, authorization: str | None) -> Sender:
    return asyncio.run(checker.verify(authorization))


def refusal(checker: SenderVerifier, authorization: str | None) -> tuple[int, str]:
    with pytest.raises(SenderRefused) as refused:
        verify(checker, authorization)
    return refused.value.status, refused.value.detail


def test_a_knative_token_names_its_sender_and_is_checked_once(
    issuer: Issuer, tmp_path: Path
) -> None:
    checker = verifier(issuer, tmp_path)
    token = issuer.token()
    assert verify(checker, f"Bearer {token}") == Sender(ISSUER, TRIGGER)
    assert verify(checker, f"bearer {token}") == Sender(ISSUER, TRIGGER)  # scheme: any case
    assert checker.issuer.fetches == 1  # discovery and keys once; the token kept


def test_es256_and_audience_lists(issuer: Issuer, tmp_path: Path) -> None:
    issuer.keys.append(Key("ec-1", "ES256"))
    checker = verifier(issuer, tmp_path)
    token = issuer.token(key=issuer.keys[1], aud=["other", AUDIENCE])
    assert verify(checker, f"Bearer {token}").sub == TRIGGER


def _unsigned(payload: dict[str, Any], header: dict[str, Any]) -> str:
    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload)}."


def test_every_bad_token_is_refused_401(issuer: Issuer, tmp_path: Path) -> None:
    checker = verifier(issuer, tmp_path)
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": TRIGGER, "aud": AUDIENCE, "exp": now + 600}
    public_pem = (
        issuer.keys[0]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    hs256_with_public_key = (
        jwt.encode(claims, public_pem.decode(), algorithm="HS256", headers={"kid": "rsa-1"})
        if _hs256_takes_pem()
        else _forged_hs256(claims, public_pem)
    )
    wrong_signature = issuer.token()[:-8] + ("A" * 8)
    cases = {
        "missing": (None, "no Authorization header"),
        "basic": ("Basic dXNlcjpwYXNz", "not 'Bearer <token>'"),
        "empty bearer": ("Bearer ", "not 'Bearer <token>'"),
        "not a JWT": ("Bearer not-a-jwt", "not a JWT"),
        "alg none": (
            f"Bearer {_unsigned(claims, {'alg': 'none', 'kid': 'rsa-1'})}",
            "'none' is not RS256",
        ),
        "HS256 with the RSA public key": (f"Bearer {hs256_with_public_key}", "'HS256'"),
        "another audience": (f"Bearer {issuer.token(aud='eventing/broker/x')}", "audience"),
        "expired": (f"Bearer {issuer.token(lifetime_s=-120)}", "expired"),
        "not yet valid": (f"Bearer {issuer.token(nbf=now + 300)}", "not valid yet"),
        "no exp": (f"Bearer {issuer.token(exp=None)}", "'exp'"),
        "the URL as issuer": (f"Bearer {issuer.token(iss=issuer.url)}", "issuer"),
        "bad signature": (f"Bearer {wrong_signature}", "signature"),
        "unknown kid": (
            f"Bearer {issuer.token(key=Key('stranger'))}",
            "not among the issuer's keys",
        ),
        "oversized": ("Bearer " + "a" * (MAX_TOKEN_BYTES + 1), f"over {MAX_TOKEN_BYTES} bytes"),
    }
    for name, (authorization, reason) in cases.items():
        status, detail = refusal(checker, authorization)
        assert status == 401 and reason in detail, (name, detail)
        if authorization and len(authorization) > 20:
            assert authorization.split()[-1][:40] not in detail  # the token is never echoed


def _hs256_takes_pem() -> bool:
    try:
        jwt.encode({"a": 1}, "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----", "HS256")
    except jwt.exceptions.InvalidKeyError:
        return False  # PyJWT refuses to sign with a PEM key: forge the token by hand
    return True


def _forged_hs256(claims: dict[str, Any], secret: bytes) -> str:
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
        + "."
        + part(json.dumps(claims).encode())
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def test_leeway_is_sixty_seconds(issuer: Issuer, tmp_path: Path) -> None:
    checker = verifier(issuer, tmp_path)
    assert verify(checker, f"Bearer {issuer.token(lifetime_s=-30)}").sub == TRIGGER
    assert refusal(checker, f"Bearer {issuer.token(lifetime_s=-90)}")[0] == 401


def test_a_key_of_the_wrong_type_is_refused(issuer: Issuer, tmp_path: Path) -> None:
    """A token saying ES256 whose kid names the RSA key is refused, whatever it carries."""
    checker = verifier(issuer, tmp_path)
    ec_key = Key("rsa-1", "ES256")  # an EC key under the RSA key's id
    status, detail = refusal(checker, f"Bearer {issuer.token(key=ec_key)}")
    assert status == 401 and "not an ES256 key" in detail


def test_rotation_fetches_again_at_most_every_ten_seconds(issuer: Issuer, tmp_path: Path) -> None:
    checker = verifier(issuer, tmp_path)
    assert verify(checker, f"Bearer {issuer.token()}").sub == TRIGGER
    fetched = checker.issuer.fetches
    checker.issuer._fetched_at -= 11  # the last fetch is over ten seconds old
    issuer.keys = [Key("rsa-2")]  # the issuer rotated: the new set replaces the old
    assert verify(checker, f"Bearer {issuer.token()}").sub == TRIGGER
    assert checker.issuer.fetches == fetched + 1
    stranger = issuer.token(key=Key("rsa-3"))
    assert refusal(checker, f"Bearer {stranger}")[0] == 401  # no fetch within ten seconds
    assert checker.issuer.fetches == fetched + 1
    old = issuer.token(key=Key("rsa-1"))
    assert refusal(checker, f"Bearer {old}")[0] == 401  # the old set is gone


def test_senders_not_allowed_are_refused_403(issuer: Issuer, tmp_path: Path) -> None:
    checker = verifier(
        issuer, tmp_path, GOVFN_EVENT_SENDERS="system:serviceaccount:billing:*, someone"
    )
    assert refusal(checker, f"Bearer {issuer.token()}") == (
        403,
        f"sender {TRIGGER!r} is not allowed (GOVFN_EVENT_SENDERS)",
    )
    allowed_token = issuer.token(sub="system:serviceaccount:billing:x")
    assert verify(checker, f"Bearer {allowed_token}").sub == "system:serviceaccount:billing:x"
    assert allowed("someone", ("someone",)) and not allowed("someone-else", ("someone",))
    assert allowed("anyone", ())


def test_an_unreachable_issuer_is_503(issuer: Issuer, tmp_path: Path) -> None:
    token = issuer.token()
    checker = verifier(issuer, tmp_path)
    issuer.server.shutdown()
    issuer.server.server_close()
    status, detail = refusal(checker, f"Bearer {token}")
    assert status == 503 and "cannot read the OIDC issuer's keys" in detail


def test_discovery_is_read_with_the_pods_own_token(issuer: Issuer, tmp_path: Path) -> None:
    issuer.required_token = "pod-token"
    anonymous = verifier(issuer, tmp_path)
    status, detail = refusal(anonymous, f"Bearer {issuer.token()}")
    assert status == 503 and "HTTP 403" in detail  # a real API server refuses anonymous discovery
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token\n")
    pod = verifier(issuer, tmp_path)
    assert verify(pod, f"Bearer {issuer.token()}").sub == TRIGGER
    assert {auth for _, auth in issuer.requests[-2:]} == {"Bearer pod-token"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GOVFN_OIDC_ISSUER": "https://kubernetes.default.svc"}, "GOVFN_OIDC_AUDIENCE"),
        (
            {"GOVFN_OIDC_ISSUER": "http://issuer.example", "GOVFN_OIDC_AUDIENCE": "a"},
            "not loopback",
        ),
        ({"GOVFN_OIDC_ISSUER": "ftp://x", "GOVFN_OIDC_AUDIENCE": "a"}, "https:// URL"),
    ],
)
def test_an_incomplete_configuration_says_what_to_set(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OidcConfig.from_env(env)
    assert OidcConfig.from_env({}) is None


def test_a_kept_token_is_accepted_until_its_expiry_plus_leeway(
    issuer: Issuer, tmp_path: Path
) -> None:
    now = [time.time()]
    checker = SenderVerifier(verifier(issuer, tmp_path).config, clock=lambda: now[0])
    token = issuer.token(lifetime_s=600)
    expiry = jwt.decode(token, options={"verify_signature": False})["exp"]
    authorization = f"Bearer {token}"
    assert checker.accepted(authorization) is None  # never verified: not kept
    assert verify(checker, authorization) == Sender(ISSUER, TRIGGER)
    assert checker.accepted(authorization) == Sender(ISSUER, TRIGGER)
    assert checker.accepted(f"bearer {token}") is None  # kept as it arrived, not re-parsed
    now[0] = expiry + LEEWAY_S - 0.5
    assert checker.accepted(authorization) == Sender(ISSUER, TRIGGER)
    now[0] = expiry + LEEWAY_S
    assert checker.accepted(authorization) is None
    assert checker.accepted(None) is None


def test_refused_tokens_are_not_kept_and_the_kept_ones_are_bounded(
    issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("govfn.identity.verifier.CACHE_SIZE", 2)
    checker = verifier(issuer, tmp_path, GOVFN_EVENT_SENDERS="system:serviceaccount:default:*")
    denied = f"Bearer {issuer.token(sub='system:serviceaccount:other:x')}"
    assert refusal(checker, denied)[0] == 403
    assert checker.accepted(denied) is None
    first, second, third = (f"Bearer {issuer.token(jti=str(n))}" for n in range(3))
    for authorization in (first, second, third):
        assert verify(checker, authorization).sub == TRIGGER
    assert checker.accepted(first) is None  # the oldest made room
    assert checker.accepted(second) == checker.accepted(third) == Sender(ISSUER, TRIGGER)
