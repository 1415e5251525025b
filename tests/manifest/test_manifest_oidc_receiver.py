"""The rendered objects and the receiver agree: a `govfn serve` started with the env
`govfn manifests --oidc-issuer ... --event-sender triggers` gives a Service accepts a token
for the audience its Trigger asks for, with the subject of that Trigger's OIDC identity, and
refuses another function's Trigger (403) and another function's audience (401)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from govfn.cli.group import cli
from govfn.manifest.oidc import trigger_subject

from support.http_server import Server, binary_headers, start_server, stop_server
from support.oidc_issuer import Issuer, running_issuer


def _rendered(issuer_url: str) -> list[dict[str, Any]]:
    args = ["manifests", "--functions", "govfn.functions", "--image", "img:1"]
    args += ["--namespace", "shop", "--oidc-issuer", issuer_url, "--event-sender", "triggers"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [doc for doc in yaml.safe_load_all(result.output) if doc]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Issuer, Server, list[dict[str, Any]]]]:
    with running_issuer() as issuer:
        objects = _rendered(issuer.url)
        echo = next(
            o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "echo"
        )
        container = echo["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"] if e["name"] != "GOVFN_CHRONICLE"}
        env |= {
            "GOVFN_FUNCTION": "echo",
            "GOVFN_SERVICE_ACCOUNT_DIR": str(tmp_path / "no-service-account"),
        }
        server = start_server(tmp_path, env=env)
        try:
            yield issuer, server, objects
        finally:
            stop_server(server)


def _post(server: Server, token: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = binary_headers(event_id=token[-12:]) | {"Authorization": f"Bearer {token}"}
    connection.request("POST", "/", body=b'{"n": 1}', headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_receiver_takes_its_own_triggers_deliveries_only(
    served: tuple[Issuer, Server, list[dict[str, Any]]],
) -> None:
    issuer, server, objects = served
    triggers = {
        o["spec"]["subscriber"]["ref"]["name"]: o for o in objects if o["kind"] == "Trigger"
    }
    echo, billing = triggers["echo"], triggers["billing"]
    audience = echo["spec"]["subscriber"]["audience"]
    subject = trigger_subject("shop", echo["metadata"]["name"])
    assert _post(server, issuer.token(sub=subject, aud=audience)) == 200
    other = trigger_subject("shop", billing["metadata"]["name"])
    assert _post(server, issuer.token(sub=other, aud=audience)) == 403
    elsewhere = billing["spec"]["subscriber"]["audience"]
    assert _post(server, issuer.token(sub=subject, aud=elsewhere)) == 401
