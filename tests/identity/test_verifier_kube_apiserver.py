"""Sender identity against the real token issuer: a kube-apiserver's service-account tokens
from the TokenRequest API (as Knative's broker gets them), its discovery and keys read with
the pod's own token and CA (anonymous reads are refused there), `iss` as discovery reports it
(`https://kubernetes.default.svc.cluster.local`), not the URL discovered from."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from govfn.identity.config import OidcConfig, Sender
from govfn.identity.verifier import SenderRefused, SenderVerifier

from support.kube_apiserver import ISSUER, KubeApiServer
from support.kube_fixtures import TokenFor

pytestmark = pytest.mark.slow

AUDIENCE = "http://billing.functions.svc.cluster.local"


def pod_account(kube_apiserver: KubeApiServer, token: str, folder: Path) -> Path:
    folder.mkdir()
    (folder / "token").write_text(token, encoding="utf-8")
    (folder / "ca.crt").write_bytes(kube_apiserver.ca_file.read_bytes())
    return folder


def test_a_broker_token_from_the_token_request_api(
    kube_apiserver: KubeApiServer, kube_namespace: str, kube_token: TokenFor, tmp_path: Path
) -> None:
    broker = f"system:serviceaccount:{kube_namespace}:mt-broker-filter"
    config = OidcConfig(
        issuer_url=kube_apiserver.url,  # discovered from here; `iss` is the issuer it reports
        audience=AUDIENCE,
        senders=(broker,),
        service_account_dir=pod_account(kube_apiserver, kube_token("billing"), tmp_path / "sa"),
    )
    verifier = SenderVerifier(config)

    sent = kube_token("mt-broker-filter", audience=AUDIENCE)
    assert asyncio.run(verifier.verify(f"Bearer {sent}")) == Sender(ISSUER, broker)

    other_audience = kube_token("mt-broker-filter", audience="http://echo.example")
    with pytest.raises(SenderRefused) as wrong_audience:
        asyncio.run(verifier.verify(f"Bearer {other_audience}"))
    assert wrong_audience.value.status == 401

    stranger = kube_token("someone-else", audience=AUDIENCE)
    with pytest.raises(SenderRefused) as not_allowed:
        asyncio.run(verifier.verify(f"Bearer {stranger}"))
    assert not_allowed.value.status == 403


def test_without_the_pod_s_token_discovery_is_refused(
    kube_apiserver: KubeApiServer, kube_token: TokenFor, tmp_path: Path
) -> None:
    """The API server answers anonymous discovery with 403: the verifier cannot read keys."""
    account = tmp_path / "sa"
    account.mkdir()
    (account / "ca.crt").write_bytes(kube_apiserver.ca_file.read_bytes())
    verifier = SenderVerifier(OidcConfig(kube_apiserver.url, AUDIENCE, service_account_dir=account))
    sent = kube_token("mt-broker-filter", audience=AUDIENCE)
    with pytest.raises(SenderRefused) as refused:
        asyncio.run(verifier.verify(f"Bearer {sent}"))
    assert refused.value.status == 503
    assert "403" in refused.value.detail


def test_govfn_serve_takes_the_trigger_token_the_api_server_issued(
    kube_apiserver: KubeApiServer, kube_namespace: str, kube_token: TokenFor, tmp_path: Path
) -> None:
    """A real `govfn serve` whose issuer is the API server (https, its CA from the pod's
    service-account folder) runs what the Trigger's own token sends, records that sender,
    and refuses a token for another audience and a sender it does not allow."""
    import http.client

    from govfn.chronicle.sqlite.ledger import Ledger

    from support.http_server import binary_headers, start_server, stop_server

    trigger = "billing-gsap-cr-received-oidc-eventing.knative.dev-trigger"
    subject = f"system:serviceaccount:{kube_namespace}:{trigger}"
    account = pod_account(kube_apiserver, kube_token("billing"), tmp_path / "sa")
    server = start_server(
        tmp_path,
        env={
            "GOVFN_FUNCTION": "echo",
            "GOVFN_OIDC_ISSUER": kube_apiserver.url,
            "GOVFN_OIDC_AUDIENCE": AUDIENCE,
            "GOVFN_EVENT_SENDERS": subject,
            "GOVFN_SERVICE_ACCOUNT_DIR": str(account),
        },
    )

    def post(token: str, event_id: str) -> int:
        headers = binary_headers(event_id=event_id) | {"Authorization": f"Bearer {token}"}
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            connection.request("POST", "/", body=b"{}", headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    try:
        assert post(kube_token(trigger, audience=AUDIENCE), "sent") == 200
        assert post(kube_token(trigger, audience="http://echo.example"), "other-aud") == 401
        assert post(kube_token("someone-else", audience=AUDIENCE), "stranger") == 403
    finally:
        stop_server(server)
    with Ledger(server.ledger) as ledger:
        invoked = [r.payload for r in ledger.records() if r.type == "FUNCTION_INVOKED"]
    assert [record["sender"] for record in invoked] == [{"iss": ISSUER, "sub": subject}]
