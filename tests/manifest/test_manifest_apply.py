"""`govfn apply` against the API-server double (a real HTTP server on 127.0.0.1), for what a
real kube-apiserver cannot be made to do: answer 500. Everything else runs against the real
one (`test_apiserver_apply.py`, `test_apiserver_chart.py`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from click.testing import CliRunner, Result
from govfn_manifest_apiserver import KUBECTL_APPLY, ApiServer, ApiServerState, run_kubectl

from govfn.cli.group import cli

IMAGE = ["--image", "registry.example/govfn:1.0.0", "--functions", "govfn.functions"]
SERVICES = ("serving.knative.dev", "functions", "services")


def apply(kubeconfig: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["apply", *IMAGE, "--kubeconfig", str(kubeconfig), *args], catch_exceptions=False
    )


def test_a_server_error_stops_at_the_object_it_hit(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.state.failures[("PATCH", "triggers")] = 500
    result = apply(kubeconfig)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "service/billing applied",
        "Error: Trigger 'billing-gsap-cr-received': HTTP 500: PATCH triggers: injected",
    ]
    assert sorted(apiserver.state.objects) == [(*SERVICES, "billing")]
    patches = [r.path.rsplit("/", 1)[1] for r in apiserver.state.requests if r.method == "PATCH"]
    assert patches == ["billing", "billing-gsap-cr-received"]  # nothing after it was tried


def test_a_server_error_while_waiting(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.state.failures[("GET", "services")] = 503
    result = apply(kubeconfig, "--wait", "--timeout", "5")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: Service 'billing': HTTP 503: GET services: injected"
    )


def test_kubectl_speaks_to_the_double(helm: Path, tmp_path: Path) -> None:
    """The real kubectl, an independent client, applies `govfn manifests` to the double:
    evidence that the double speaks the wire protocol, not just what govfn expects."""
    kubectl = helm.parent / "kubectl"
    manifests = CliRunner().invoke(cli, ["manifests", *IMAGE], catch_exceptions=False).output
    server = ApiServer(ApiServerState(token=None)).start()  # kubectl sends no token over http
    try:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")

        def kubectl_run(*args: str) -> subprocess.CompletedProcess[str]:
            return run_kubectl(kubectl, kubeconfig, *args, stdin=manifests)

        dry = kubectl_run(*KUBECTL_APPLY, "--dry-run=server")
        assert dry.returncode == 0, dry.stderr
        assert server.state.objects == {}
        real = kubectl_run(*KUBECTL_APPLY)
        assert real.returncode == 0, real.stderr
        assert "service.serving.knative.dev/billing serverside-applied" in real.stdout
        assert "sinkbinding.sources.knative.dev/billing-chronicle serverside-applied" in real.stdout
        listed = kubectl_run("get", "ksvc,triggers", "-o", "name")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split() == [
            "service.serving.knative.dev/billing",
            "service.serving.knative.dev/echo",
            "trigger.eventing.knative.dev/billing-gsap-cr-received",
            "trigger.eventing.knative.dev/echo-echo-requested",
        ]
    finally:
        server.stop()
