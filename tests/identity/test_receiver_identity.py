"""Sender identity on the real server, in both serving modes (govfn's worker, and stock
gunicorn on the WSGI path): a delivery without a valid token is refused 401 and runs
nothing, a sender not allowed 403, an unreachable issuer 503 with Retry-After; an accepted
delivery's FUNCTION_INVOKED record names its sender."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from govfn.chronicle.sqlite.ledger import Ledger

from support.http_server import Server, binary_headers, start_server, stop_server
from support.oidc_issuer import ISSUER, TRIGGER, Issuer, running_issuer

AUDIENCE = "serving.knative.dev/service/default/echo"
MODES = {
    "worker": {},
    "wsgi": {"gunicorn_app": "govfn.app:create_app()"},
}


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture(params=sorted(MODES))
def server(request: pytest.FixtureRequest, issuer: Issuer, tmp_path: Path) -> Iterator[Server]:
    env = {
        "GOVFN_FUNCTION": "echo",
        "GOVFN_OIDC_ISSUER": issuer.url,
        "GOVFN_OIDC_AUDIENCE": AUDIENCE,
        "GOVFN_EVENT_SENDERS": "system:serviceaccount:default:*",
        "GOVFN_SERVICE_ACCOUNT_DIR": str(tmp_path / "no-service-account"),
    }
    running = start_server(tmp_path, env=env, **MODES[request.param])  # type: ignore[arg-type]
    yield running
    stop_server(running)


def post(server: Server, token: str | None, event_id: str = "e-1") -> http.client.HTTPResponse:
    headers = binary_headers(event_id=event_id)
    if token is not None:
        headers["Authorization"] = token
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("POST", "/", body=b'{"n": 1}', headers=headers)
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def invoked(server: Server) -> list[dict[str, object]]:
    with Ledger(server.ledger) as ledger:
        return [r.payload for r in ledger.records() if r.type == "FUNCTION_INVOKED"]


def test_an_accepted_delivery_records_its_sender(server: Server, issuer: Issuer) -> None:
    answer = post(server, f"Bearer {issuer.token(aud=AUDIENCE)}")
    assert answer.status == 200, answer.body  # type: ignore[attr-defined]
    (record,) = invoked(server)
    assert record["sender"] == {"iss": ISSUER, "sub": TRIGGER}


def test_a_token_the_broker_reuses_is_checked_once(server: Server, issuer: Issuer) -> None:
    authorization = f"Bearer {issuer.token(aud=AUDIENCE)}"
    for n in range(3):
        answer = post(server, authorization, event_id=f"reused-{n}")
        assert answer.status == 200, answer.body  # type: ignore[attr-defined]
    assert [record["sender"] for record in invoked(server)] == [{"iss": ISSUER, "sub": TRIGGER}] * 3
    assert len(issuer.requests) == 2  # discovery and keys, read once


def test_refusals_run_nothing_and_never_answer_5xx(server: Server, issuer: Issuer) -> None:
    good = issuer.token(aud=AUDIENCE)
    bad = {
        None: 401,
        "Basic dXNlcjpwYXNz": 401,
        "Bearer": 401,
        "Bearer x.y.z": 401,
        "Bearer " + good[:-10] + "AAAAAAAAAA": 401,
        f"Bearer {issuer.token(aud='another/audience')}": 401,
        f"Bearer {issuer.token(aud=AUDIENCE, lifetime_s=-300)}": 401,
        "Bearer " + "e" * 7000: 401,
        f"Bearer {issuer.token(aud=AUDIENCE, sub='system:serviceaccount:other:x')}": 403,
    }
    for n, (authorization, status) in enumerate(bad.items()):
        answer = post(server, authorization, event_id=f"bad-{n}")
        body = json.loads(answer.body)  # type: ignore[attr-defined]
        assert answer.status == status, (authorization, body)
        assert answer.getheader("WWW-Authenticate", "").startswith("Bearer")
        assert body["status"] == status and body["detail"]
        if authorization and len(authorization) > 30:
            assert authorization[7:47] not in answer.body.decode()  # type: ignore[attr-defined]
    too_large = post(server, "Bearer " + "e" * 9000, event_id="huge")  # over the field limit
    assert too_large.status == 431
    assert invoked(server) == []  # no function ran


def test_an_unreachable_issuer_is_retried_not_dead_lettered(server: Server, issuer: Issuer) -> None:
    token = issuer.token(aud=AUDIENCE)
    issuer.server.shutdown()
    issuer.server.server_close()
    answer = post(server, f"Bearer {token}")
    assert answer.status == 503 and answer.getheader("Retry-After")
    assert invoked(server) == []


def test_health_probes_stay_open(server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/health/readiness")
    assert connection.getresponse().status == 200
    connection.close()


def test_serve_refuses_an_issuer_without_audience(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="GOVFN_OIDC_AUDIENCE"):
        start_server(tmp_path, env={"GOVFN_OIDC_ISSUER": "https://kubernetes.default.svc"})


def test_the_lineage_shows_the_sender(server: Server, issuer: Issuer) -> None:
    """`govfn chronicle lineage` (text and JSON) and the OpenLineage export name the sender."""
    import subprocess
    import sys

    answer = post(server, f"Bearer {issuer.token(aud=AUDIENCE)}", event_id="traced")
    assert answer.status == 200
    lineage_cid = answer.getheader("ce-lineagecid") or ""

    def govfn(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "govfn", "chronicle", *args, "--ledger", str(server.ledger)],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout

    assert f"sent by {TRIGGER}" in govfn("lineage", lineage_cid)
    graph = json.loads(govfn("lineage", "--format", "json", lineage_cid))
    (node,) = [n for n in graph["nodes"] if n["kind"] == "invoked"]
    assert node["sender"] == {"iss": ISSUER, "sub": TRIGGER}
    events = [json.loads(line) for line in govfn("export", "--format", "openlineage").splitlines()]
    facets = [e["run"]["facets"]["govfn_chronicle"] for e in events if e["eventType"] == "START"]
    assert facets[0]["sender"] == {"iss": ISSUER, "sub": TRIGGER}
