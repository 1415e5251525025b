"""charts/govfn with `oidc.issuer` and `oidc.eventSenders`, with the real helm binary."""

from __future__ import annotations

from pathlib import Path

import pytest
from govfn_manifest_schemas import schema_errors
from test_manifest_helm import CHART, OPTIONS, govfn_manifests, helm_run, objects

ISSUER = "https://kubernetes.default.svc"
OIDC = ["--oidc-issuer", ISSUER, "--event-sender", "triggers", "--event-sender", "system:ops:*"]


def _env(service: dict[str, object]) -> dict[str, str]:
    pod = service["spec"]["template"]["spec"]  # type: ignore[index]
    return {e["name"]: e.get("value", "") for e in pod["containers"][0]["env"]}  # type: ignore[index]


@pytest.mark.parametrize(
    "options",
    [[*OPTIONS, *OIDC], ["--image", "img:1", "--namespace", "shop", "--oidc-issuer", ISSUER]],
    ids=["all-options-and-senders", "issuer-only"],
)
def test_template_equals_govfn_manifests(helm: Path, tmp_path: Path, options: list[str]) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(govfn_manifests(tmp_path, *options, "--format", "helm-values"))
    lint = helm_run(helm, "lint", "--strict", str(CHART), "-f", str(values))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = helm_run(helm, "template", "govfn", str(CHART), "-f", str(values))
    assert rendered.returncode == 0, rendered.stderr
    from_helm = objects(rendered.stdout)
    from_govfn = objects(govfn_manifests(tmp_path, *options))
    assert from_helm == from_govfn
    services = [o for o in from_helm if o["kind"] == "Service"]
    triggers = [o for o in from_helm if o["kind"] == "Trigger"]
    audiences = {o["metadata"]["name"]: _env(o)["GOVFN_OIDC_AUDIENCE"] for o in services}
    assert len(set(audiences.values())) == len(services) == 4
    for trigger in triggers:
        subscriber = trigger["spec"]["subscriber"]
        assert subscriber["audience"] == audiences[subscriber["ref"]["name"]]
    senders = [_env(o).get("GOVFN_EVENT_SENDERS") for o in services]
    if "--event-sender" in options:  # the 63-character Trigger's subject came from the values
        assert any(s and "shop-shipping-with-a-rather-lon" in s for s in senders), senders
        assert "triggerServiceAccounts" in values.read_text()
    else:
        assert senders == [None] * 4
    for obj in from_helm:
        assert schema_errors(obj) == []


def test_the_release_namespace_names_the_audience(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    args = ["--image", "img:1", "--namespace", "shop", *OIDC]
    values.write_text(govfn_manifests(tmp_path, *args, "--format", "helm-values"))
    rendered = helm_run(
        helm, "template", "govfn", str(CHART), "-f", str(values), "--set", "namespace=", "-n", "pay"
    )
    assert rendered.returncode == 0, rendered.stderr
    billing = next(o for o in objects(rendered.stdout) if o["metadata"]["name"] == "billing")
    env = _env(billing)
    assert env["GOVFN_OIDC_AUDIENCE"] == "serving.knative.dev/service/pay/billing"
    assert env["GOVFN_EVENT_SENDERS"] == (
        "system:serviceaccount:pay:billing-gsap-cr-received-oidc-eventing.knative.dev-trigger,"
        "system:ops:*"
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["--set", "oidc.issuer="], "oidc.eventSenders: needs oidc.issuer"),
        (["--set", "oidc.issuer=http://issuer.example"], "/oidc/issuer"),
        (["--set", "oidc.eventSenders={a,b*c}"], "/oidc/eventSenders/1"),
        (["--set", "env.GOVFN_OIDC_AUDIENCE=x"], "env[GOVFN_OIDC_AUDIENCE]: is set by oidc.issuer"),
        (["--set", "oidc.extra=1"], "/oidc"),
        # another prefix makes other (longer) Trigger names, whose md5 Helm cannot compute
        (["--set", "namePrefix=shop-team-"], "triggerServiceAccounts: Trigger"),
    ],
)
def test_chart_refuses(helm: Path, tmp_path: Path, settings: list[str], message: str) -> None:
    values = tmp_path / "values.yaml"
    args = ("--image", "img", "--namespace", "shop", *OIDC, "--format", "helm-values")
    values.write_text(govfn_manifests(tmp_path, *args))
    refused = helm_run(helm, "template", "govfn", str(CHART), "-f", str(values), *settings)
    assert refused.returncode != 0 and message in refused.stderr, (settings, refused.stderr)
