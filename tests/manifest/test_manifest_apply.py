"""`govfn apply` against the API-server double (a real HTTP server on 127.0.0.1).

The double speaks the Kubernetes wire protocol for what apply uses and validates bodies
against the CRD schemas made strict. No real cluster is exercised.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from govfn_manifest_apiserver import ApiServer, ApiServerState

from govfn.cli.group import cli
from govfn.manifest.apply import Applier, ApplyError, Target, connect
from govfn.manifest.options import ManifestOptions
from govfn.manifest.render import render_all
from govfn.registry import FunctionRegistry, load_functions

IMAGE = ["--image", "registry.example/govfn:1.0.0", "--functions", "govfn.functions"]
SERVICES = ("serving.knative.dev", "functions", "services")
TRIGGERS = ("eventing.knative.dev", "functions", "triggers")
BINDINGS = ("sources.knative.dev", "functions", "sinkbindings")


def apply(kubeconfig: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["apply", *IMAGE, "--kubeconfig", str(kubeconfig), *args], catch_exceptions=False
    )


def stored(apiserver: ApiServer) -> list[tuple[str, ...]]:
    return sorted(apiserver.state.objects)


def test_server_side_apply(apiserver: ApiServer, kubeconfig: Path) -> None:
    result = apply(kubeconfig)
    assert result.exit_code == 0, result.output
    assert stored(apiserver) == [
        (*TRIGGERS, "billing-gsap-cr-received"),
        (*TRIGGERS, "echo-echo-requested"),
        (*SERVICES, "billing"),
        (*SERVICES, "echo"),
        (*BINDINGS, "billing-chronicle"),
        (*BINDINGS, "echo-chronicle"),
    ]
    patches = [r for r in apiserver.state.requests if r.method == "PATCH"]
    assert len(patches) == 6
    for request in patches:
        assert request.content_type == "application/apply-patch+yaml"
        assert request.query == {"fieldManager": "govfn", "force": "true"}
        assert "/namespaces/functions/" in request.path  # the kubeconfig context's namespace
    discovery = [r.path for r in apiserver.state.requests if r.method == "GET"]
    assert discovery[:4] == [
        "/apis/",
        "/apis/serving.knative.dev/v1",
        "/apis/eventing.knative.dev/v1",
        "/apis/sources.knative.dev/v1",
    ]
    service = apiserver.state.objects[(*SERVICES, "billing")]
    assert service["metadata"]["managedFields"] == [{"manager": "govfn", "operation": "Apply"}]
    assert "service/billing applied" in result.output


def test_reapply_is_idempotent(apiserver: ApiServer, kubeconfig: Path) -> None:
    assert apply(kubeconfig).exit_code == 0
    first = apiserver.state.objects[(*SERVICES, "echo")]["metadata"]["generation"]
    assert apply(kubeconfig).exit_code == 0
    assert apiserver.state.objects[(*SERVICES, "echo")]["metadata"]["generation"] == first
    assert apply(kubeconfig, "--max-scale", "3").exit_code == 0
    assert apiserver.state.objects[(*SERVICES, "echo")]["metadata"]["generation"] == first + 1


def test_dry_run_stores_nothing(apiserver: ApiServer, kubeconfig: Path) -> None:
    result = apply(kubeconfig, "--dry-run")
    assert result.exit_code == 0, result.output
    assert stored(apiserver) == []
    patches = [r for r in apiserver.state.requests if r.method == "PATCH"]
    assert len(patches) == 6 and all(r.query.get("dryRun") == "All" for r in patches)
    assert "(dry run)" in result.output


def test_namespace_and_context_flags(apiserver: ApiServer, kubeconfig: Path) -> None:
    assert apply(kubeconfig, "--namespace", "team-a").exit_code == 0
    assert apply(kubeconfig, "--context", "other-namespace").exit_code == 0
    namespaces = {key[1] for key in apiserver.state.objects}
    assert namespaces == {"team-a", "other"}
    trigger = apiserver.state.objects[
        ("eventing.knative.dev", "team-a", "triggers", "echo-echo-requested")
    ]
    assert trigger["spec"]["subscriber"]["ref"]["namespace"] == "team-a"


def test_prune_deletes_only_this_app_s_stale_objects(
    apiserver: ApiServer, kubeconfig: Path
) -> None:
    def seed(name: str, labels: dict[str, str]) -> None:
        apiserver.state.seed(
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Service",
                "metadata": {"name": name, "labels": labels},
                "spec": {},
            },
            "functions",
        )

    govfn_labels = {"app.kubernetes.io/managed-by": "govfn", "app.kubernetes.io/part-of": "govfn"}
    seed("retired", govfn_labels)
    seed("other-app", {**govfn_labels, "app.kubernetes.io/part-of": "shop"})
    seed("hand-made", {"app.kubernetes.io/part-of": "govfn"})
    apiserver.state.seed(
        {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Trigger",
            "metadata": {"name": "retired-thing", "labels": govfn_labels},
            "spec": {},
        },
        "functions",
    )
    dry = apply(kubeconfig, "--prune", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert (*SERVICES, "retired") in apiserver.state.objects
    result = apply(kubeconfig, "--prune")
    assert result.exit_code == 0, result.output
    names = {key[3] for key in apiserver.state.objects}
    assert names == {
        "billing",
        "echo",
        "billing-gsap-cr-received",
        "echo-echo-requested",
        "billing-chronicle",
        "echo-chronicle",
        "other-app",
        "hand-made",
    }
    deletes = [r for r in apiserver.state.requests if r.method == "DELETE"]
    assert [r.path.rsplit("/", 1)[1] for r in deletes] == ["retired-thing", "retired"] * 2
    assert [r.query.get("dryRun") for r in deletes] == ["All", "All", None, None]
    lists = [
        r
        for r in apiserver.state.requests
        if r.method == "GET" and r.path.endswith(("services", "triggers"))
    ]
    assert lists and all(
        r.query["labelSelector"]
        == "app.kubernetes.io/managed-by=govfn,app.kubernetes.io/part-of=govfn"
        for r in lists
    )
    assert "service/retired pruned" in result.output


def test_wait_until_ready(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.state.ready_after = 3
    result = apply(kubeconfig, "--wait", "--timeout", "20")
    assert result.exit_code == 0, result.output
    assert "waiting for 6 object(s) to become ready (" in result.output
    assert len(re.findall(r"^(service|trigger|sinkbinding)/\S+ ready$", result.output, re.M)) == 6


def test_wait_times_out(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.state.ready_after = None
    result = apply(kubeconfig, "--wait", "--timeout", "0.3")
    assert result.exit_code == 1
    assert "--wait: not ready after 0.3s: service/billing (RevisionMissing)" in result.output


def test_double_rejects_what_the_schema_rejects(apiserver: ApiServer, kubeconfig: Path) -> None:
    from govfn.manifest import ManifestOptions, render_all
    from govfn.manifest.apply import Applier, ApplyError, Target, connect
    from govfn.registry import FunctionRegistry, load_functions

    registry = load_functions(
        ["govfn.functions.echo"], FunctionRegistry(), include_entry_points=False
    )
    service = render_all(registry, ManifestOptions(image="img"))[0]
    service["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    api_client, namespace = connect(Target(kubeconfig=str(kubeconfig)))
    applier = Applier(api_client, namespace, echo=lambda line: None)
    try:
        applier.apply([service], dry_run=False)
    except ApplyError as exc:
        assert exc.field == "Service 'echo'"
        assert "HTTP 422" in str(exc) and "imagee" in str(exc)
    else:
        raise AssertionError("the double accepted an unknown field")
    finally:
        api_client.close()
    assert stored(apiserver) == []


def test_missing_knative_eventing(apiserver: ApiServer, kubeconfig: Path) -> None:
    del apiserver.state.groups["eventing.knative.dev"]
    result = apply(kubeconfig)
    assert result.exit_code == 1
    assert "eventing.knative.dev/v1; is Knative Eventing installed?" in result.output


def test_bad_token(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.state.token = "rotated"
    result = apply(kubeconfig)
    assert result.exit_code == 1 and "HTTP 401" in result.output


def test_unreachable_server(tmp_path: Path, apiserver: ApiServer) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    apiserver.stop()
    result = apply(kubeconfig)
    assert result.exit_code == 1 and "discovery" in result.output


def test_refused_manifest_never_reaches_the_server(apiserver: ApiServer, kubeconfig: Path) -> None:
    result = apply(kubeconfig, "--env", "K_REVISION=x")
    assert result.exit_code == 2 and "K_REVISION is reserved" in result.output
    assert [r for r in apiserver.state.requests if r.method == "PATCH"] == []


def test_missing_kubeconfig(tmp_path: Path) -> None:
    result = apply(tmp_path / "absent")
    assert result.exit_code == 1 and "--kubeconfig" in result.output


def test_without_the_apply_extra_the_error_names_it(
    apiserver: ApiServer, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "kubernetes" or m.startswith("kubernetes.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # `import kubernetes` fails
    result = apply(kubeconfig)
    assert result.exit_code == 1
    assert "kubernetes: govfn apply needs the Kubernetes client" in result.output
    assert "pip install 'govfn[apply]'" in result.output
    assert apiserver.state.requests == []


def test_kubectl_speaks_to_the_double(helm: Path, tmp_path: Path) -> None:
    """The real kubectl, an independent client, applies `govfn manifests` to the double:
    evidence that the double speaks the wire protocol, not just what govfn expects."""
    kubectl = helm.parent / "kubectl"
    manifests = CliRunner().invoke(cli, ["manifests", *IMAGE], catch_exceptions=False).output
    server = ApiServer(ApiServerState(token=None)).start()  # kubectl sends no token over http
    try:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")

        def kubectl_run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(kubectl), "--kubeconfig", str(kubeconfig), *args],
                input=manifests,
                capture_output=True,
                text=True,
                timeout=60,
            )

        side = ("apply", "--server-side", "--field-manager", "govfn", "--validate=false", "-f", "-")
        dry = kubectl_run(*side, "--dry-run=server")
        assert dry.returncode == 0, dry.stderr
        assert server.state.objects == {}
        real = kubectl_run(*side)
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


def test_force_takes_over_fields_of_another_manager(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.state.seed(
        {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": "echo", "labels": {}},
            "spec": {},
        },
        "functions",
        manager="kubectl-edit",
    )
    result = apply(kubeconfig)
    assert result.exit_code == 0, result.output
    echo = apiserver.state.objects[(*SERVICES, "echo")]
    assert echo["metadata"]["managedFields"] == [{"manager": "govfn", "operation": "Apply"}]
    assert echo["metadata"]["generation"] == 2


def test_in_a_pod_the_service_account_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No kubeconfig: the service account's token, CA and namespace, over HTTPS as in a pod."""
    certificate, key = tmp_path / "ca.crt", tmp_path / "key.pem"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [*openssl, *subject, "-keyout", str(key), "-out", str(certificate)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    state = ApiServerState()
    server = ApiServer(state, tls=(certificate, key)).start()
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(state.token or "")
    (account / "ca.crt").write_bytes(certificate.read_bytes())
    (account / "namespace").write_text("in-pod\n")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.server_address[1]))
    try:
        api_client, namespace = connect(Target(), service_account=account)
        assert namespace == "in-pod"
        options = ManifestOptions(image="registry.example/govfn:1.0.0", namespace=namespace)
        registry = load_functions(
            ["govfn.functions.echo"], FunctionRegistry(), include_entry_points=False
        )
        applier = Applier(api_client, namespace, echo=lambda line: None)
        applier.apply(render_all(registry, options), dry_run=False)
    finally:
        server.stop()
    assert sorted(state.objects) == [
        ("eventing.knative.dev", "in-pod", "triggers", "echo-echo-requested"),
        ("serving.knative.dev", "in-pod", "services", "echo"),
        ("sources.knative.dev", "in-pod", "sinkbindings", "echo-chronicle"),
    ]
    (account / "token").unlink()
    with pytest.raises(ApplyError, match="not in a cluster"):
        connect(Target(), service_account=account)


def test_sink_bindings_are_applied_and_validated_by_the_double(
    apiserver: ApiServer, kubeconfig: Path
) -> None:
    result = apply(kubeconfig, "--broker", "events")
    assert result.exit_code == 0, result.output
    binding = apiserver.state.objects[(*BINDINGS, "billing-chronicle")]
    assert binding["spec"] == {
        "subject": {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "name": "billing",
            "namespace": "functions",
        },
        "sink": {
            "ref": {
                "apiVersion": "eventing.knative.dev/v1",
                "kind": "Broker",
                "name": "events",
                "namespace": "functions",
            }
        },
    }
    paths = [r.path for r in apiserver.state.requests if r.method == "PATCH"]
    assert "/apis/sources.knative.dev/v1/namespaces/functions/sinkbindings/echo-chronicle" in paths
    assert "sinkbinding/billing-chronicle applied" in result.output


def test_double_rejects_a_sink_binding_the_schema_rejects(
    apiserver: ApiServer, kubeconfig: Path
) -> None:
    registry = load_functions(
        ["govfn.functions.echo"], FunctionRegistry(), include_entry_points=False
    )
    binding = render_all(registry, ManifestOptions(image="img", namespace="functions"))[-1]
    assert binding["kind"] == "SinkBinding"
    binding["spec"]["sink"]["uri"] = 7  # a string in the CRD
    api_client, namespace = connect(Target(kubeconfig=str(kubeconfig)))
    applier = Applier(api_client, namespace, echo=lambda line: None)
    try:
        with pytest.raises(ApplyError) as caught:
            applier.apply([binding], dry_run=False)
    finally:
        api_client.close()
    assert caught.value.field == "SinkBinding 'echo-chronicle'"
    assert "HTTP 422" in str(caught.value) and "spec.sink.uri" in str(caught.value)
    assert stored(apiserver) == []


def test_prune_removes_sink_bindings_no_longer_rendered(
    apiserver: ApiServer, kubeconfig: Path
) -> None:
    govfn_labels = {"app.kubernetes.io/managed-by": "govfn", "app.kubernetes.io/part-of": "govfn"}
    for kind, api in (
        ("Service", "serving.knative.dev/v1"),
        ("Trigger", "eventing.knative.dev/v1"),
        ("SinkBinding", "sources.knative.dev/v1"),
    ):
        apiserver.state.seed(
            {
                "apiVersion": api,
                "kind": kind,
                "metadata": {"name": f"retired-{kind.lower()}", "labels": govfn_labels},
                "spec": {},
            },
            "functions",
        )
    assert apply(kubeconfig).exit_code == 0
    assert (*BINDINGS, "echo-chronicle") in apiserver.state.objects
    result = apply(kubeconfig, "--chronicle-sink", "none", "--prune")
    assert result.exit_code == 0, result.output
    assert {key[3] for key in apiserver.state.objects} == {
        "billing",
        "echo",
        "billing-gsap-cr-received",
        "echo-echo-requested",
    }
    deletes = [r.path.rsplit("/", 2)[1:] for r in apiserver.state.requests if r.method == "DELETE"]
    assert deletes == [  # nothing is left pointing at a deleted Service
        ["triggers", "retired-trigger"],
        ["sinkbindings", "billing-chronicle"],
        ["sinkbindings", "echo-chronicle"],
        ["sinkbindings", "retired-sinkbinding"],
        ["services", "retired-service"],
    ]
    assert "sinkbinding/echo-chronicle pruned" in result.output


def test_missing_sink_bindings(apiserver: ApiServer, kubeconfig: Path) -> None:
    del apiserver.state.groups["sources.knative.dev"]
    result = apply(kubeconfig)
    assert result.exit_code == 1
    assert "sources.knative.dev/v1; is Knative Eventing installed?" in result.output
    assert [r for r in apiserver.state.requests if r.method == "PATCH"] == []
    without = apply(kubeconfig, "--chronicle-sink", "none")
    assert without.exit_code == 0, without.output
    assert len(stored(apiserver)) == 4


def test_database_secret_through_the_double(apiserver: ApiServer, kubeconfig: Path) -> None:
    result = apply(kubeconfig, "--database-secret", "pg:dsn", "--var-size-limit", "256Mi")
    assert result.exit_code == 0, result.output
    pod = apiserver.state.objects[(*SERVICES, "billing")]["spec"]["template"]["spec"]
    env = {entry["name"]: entry for entry in pod["containers"][0]["env"]}
    assert env["GOVFN_CHRONICLE"]["valueFrom"] == {"secretKeyRef": {"name": "pg", "key": "dsn"}}
    assert env["GOVFN_CHRONICLE_SPOOL"] == {
        "name": "GOVFN_CHRONICLE_SPOOL",
        "value": "/var/lib/govfn/spool",
    }
    assert pod["volumes"][0] == {"name": "ledger", "emptyDir": {"sizeLimit": "256Mi"}}
