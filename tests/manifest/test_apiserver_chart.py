"""The chart and the least-privilege Role on a real kube-apiserver (`support.kube_apiserver`):
`helm install`/`upgrade`/`uninstall` with govfn's generated values, `govfn apply` as a user
holding only the chart's Role (and failing without each of its verbs), and as a pod's
service account."""

from __future__ import annotations

import copy
import functools
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from govfn_manifest_kube import (
    ALL_SIX,
    GOVFN_LABELS,
    apply,
    get,
    image_of,
    mark_ready,
    seed,
    stored,
)

from conftest import REPO
from govfn.cli.group import cli
from govfn.manifest.apply import ROLE_HINT, Applier, ApplyError, Target, connect
from govfn.manifest.options import ManifestOptions
from govfn.manifest.render import render_all
from govfn.registry import FunctionRegistry, load_functions

from support.kube_apiserver import KubeApiServer

pytestmark = pytest.mark.slow

CHART = REPO / "charts" / "govfn"
VERBS = ["get", "list", "create", "patch", "delete"]


def run_helm(
    server: KubeApiServer, helm_binary: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm_binary), "--kubeconfig", str(server.root / "admin.kubeconfig"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=server.tool_env(),
    )


def rbac_settings(*subjects: tuple[str, str]) -> list[str]:
    settings = ["--set", "rbac.create=true"]
    for index, (kind, name) in enumerate(subjects):
        settings += ["--set", f"rbac.subjects[{index}].kind={kind}"]
        settings += ["--set", f"rbac.subjects[{index}].name={name}"]
    return settings


def chart_role(server: KubeApiServer, helm_binary: Path) -> dict[str, Any]:
    """The Role `helm template --set rbac.create=true` renders (a fresh copy; rendered once)."""
    return copy.deepcopy(_rendered_role(server, helm_binary))


@functools.cache
def _rendered_role(server: KubeApiServer, helm_binary: Path) -> dict[str, Any]:
    rendered = run_helm(
        server, helm_binary, "template", "rbac", str(CHART), *rbac_settings(("User", "deployer"))
    )
    assert rendered.returncode == 0, rendered.stderr
    docs = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    assert [doc["kind"] for doc in docs] == ["Role", "RoleBinding"]
    assert "namespace" not in docs[0]["metadata"]  # helm install -n, kubectl -n decide
    role: dict[str, Any] = docs[0]
    return role


def await_access(server: KubeApiServer, user: str, namespace: str, verb: str) -> None:
    """RBAC reaches the authorizer through a cache: wait (bounded) until `user` may `verb`
    services there, so that what the test sees next is the Role's doing."""
    deadline = time.monotonic() + 30
    while not server.may(user, namespace, verb, "serving.knative.dev", "services"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{user} still may not {verb} services in {namespace}")
        time.sleep(0.1)


def test_docs_show_the_chart_s_role(kube_apiserver: KubeApiServer, helm: Path) -> None:
    text = (REPO / "docs" / "knative.md").read_text(encoding="utf-8")
    blocks = [
        yaml.safe_load(block)
        for block in re.findall(r"```yaml\n(.*?)```", text, re.S)
        if "kind: Role" in block
    ]
    assert len(blocks) == 1
    assert blocks[0]["rules"] == chart_role(kube_apiserver, helm)["rules"]


def test_govfn_apply_with_only_the_chart_s_role(
    kube_apiserver: KubeApiServer, helm: Path, kube_admin: Any, kube_namespace: str, tmp_path: Path
) -> None:
    installed = run_helm(
        kube_apiserver, helm, "install", "govfn-rbac", str(CHART), "-n", kube_namespace,
        *rbac_settings(("User", "deployer")),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    await_access(kube_apiserver, "deployer", kube_namespace, "delete")
    seed(kube_admin, kube_namespace, "Service", "retired", dict(GOVFN_LABELS))
    kubeconfig = kube_apiserver.write_kubeconfig(
        tmp_path / "kubeconfig", user="deployer", namespace=kube_namespace
    )
    first = apply(kubeconfig, "--prune")
    assert first.exit_code == 0, first.output
    assert stored(kube_admin, kube_namespace) == ALL_SIX
    for key in ALL_SIX:
        mark_ready(kube_admin, kube_namespace, *key, generation=1)
    rolled = apply(
        kubeconfig,
        "--image",
        "registry.example/govfn:2.0.0",
        "--prune",
        "--wait",
        "--timeout",
        "0.5",
    )
    assert rolled.exit_code == 1  # Ready still reports generation 1
    assert "(not yet observed)" in rolled.output
    dry = apply(kubeconfig, "--dry-run", "--prune", "--chronicle-sink", "none")
    assert dry.exit_code == 0, dry.output
    assert "sinkbinding/echo-chronicle pruned (dry run)" in dry.output
    assert stored(kube_admin, kube_namespace) == ALL_SIX
    assert get(kube_admin, kube_namespace, "Service", "echo")["metadata"]["generation"] == 2


@pytest.mark.parametrize(
    ("verb", "step"),
    [
        ("create", "apply"),
        ("patch", "apply"),
        ("get", "wait"),
        ("list", "prune"),
        ("delete", "prune"),
    ],
)
def test_every_verb_of_the_role_is_needed(
    kube_apiserver: KubeApiServer,
    helm: Path,
    kube_admin: Any,
    kube_namespace: str,
    tmp_path: Path,
    verb: str,
    step: str,
) -> None:
    role = chart_role(kube_apiserver, helm)
    for rule in role["rules"]:
        rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "govfn-apply"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "govfn-apply"},
        "subjects": [{"kind": "User", "name": "deployer", "apiGroup": "rbac.authorization.k8s.io"}],
    }
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(kube_admin.api_client)
    rbac.create_namespaced_role(kube_namespace, role)
    rbac.create_namespaced_role_binding(kube_namespace, binding)
    await_access(kube_apiserver, "deployer", kube_namespace, "get" if verb != "get" else "list")
    seed(kube_admin, kube_namespace, "Service", "retired", dict(GOVFN_LABELS))
    kubeconfig = kube_apiserver.write_kubeconfig(
        tmp_path / "kubeconfig", user="deployer", namespace=kube_namespace
    )
    results = {"apply": apply(kubeconfig), "prune": apply(kubeconfig, "--prune")}
    for key in stored(kube_admin, kube_namespace):
        mark_ready(kube_admin, kube_namespace, *key, generation=1)
    results["wait"] = apply(kubeconfig, "--wait", "--timeout", "5")
    failed = [name for name, result in results.items() if result.exit_code != 0]
    every_step_applies_first = ["apply", "prune", "wait"]
    assert failed == (every_step_applies_first if step == "apply" else [step]), {
        name: result.output for name, result in results.items()
    }
    line = results[step].output.strip().splitlines()[-1]
    assert "HTTP 403" in line and line.endswith(ROLE_HINT), line
    if verb == "create":  # the server names no verb for a create refused inside an apply
        assert 'services.serving.knative.dev "billing" is forbidden; govfn apply needs' in line
    else:
        assert f'cannot {verb} resource "' in line


def with_crd_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` as the server stores it: the Service CRD's one default (a port's protocol TCP)."""
    spec = copy.deepcopy(spec)
    for container in spec.get("template", {}).get("spec", {}).get("containers", []):
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
    return spec


def test_helm_install_upgrade_uninstall_with_govfn_values(
    kube_apiserver: KubeApiServer, helm: Path, kube_admin: Any, kube_namespace: str, tmp_path: Path
) -> None:
    options = [
        "--image", "registry.example/govfn:1.0.0", "--functions", "govfn.functions",
        "--namespace", kube_namespace, "--max-scale", "5", "--retry", "3",
        "--label", "team=pay", "--annotation", "example.com/owner=pay",
        "--env", "LOG_LEVEL=debug", "--env", "RETRIES=3", "--filter", "source=/shop",
    ]  # fmt: skip
    values = tmp_path / "values.yaml"
    written = CliRunner().invoke(cli, ["manifests", *options, "--format", "helm-values"])
    assert written.exit_code == 0, written.output
    values.write_text(written.output, encoding="utf-8")
    rendered = CliRunner().invoke(cli, ["manifests", *options])
    assert rendered.exit_code == 0, rendered.output
    expected = {
        (doc["kind"], doc["metadata"]["name"]): doc
        for doc in yaml.safe_load_all(rendered.output)
        if doc
    }
    assert sorted(expected) == ALL_SIX

    release = ("govfn", str(CHART), "-n", kube_namespace, "-f", str(values))
    installed = run_helm(kube_apiserver, helm, "install", *release)
    assert installed.returncode == 0, installed.stderr
    assert stored(kube_admin, kube_namespace) == ALL_SIX
    for key, doc in expected.items():
        obj = get(kube_admin, kube_namespace, *key)
        assert obj["spec"] == with_crd_defaults(doc["spec"]), key  # nothing pruned
        # Helm marks what it installs as its own, so `govfn apply --prune` leaves it alone
        labels = {**doc["metadata"]["labels"], "app.kubernetes.io/managed-by": "Helm"}
        assert obj["metadata"]["labels"] == labels, key
        assert doc["metadata"]["annotations"].items() <= obj["metadata"]["annotations"].items()

    upgraded = run_helm(
        kube_apiserver, helm, "upgrade", *release, "--set", "image=registry.example/govfn:2.0.0"
    )
    assert upgraded.returncode == 0, upgraded.stderr
    for kind, name in ALL_SIX:
        obj = get(kube_admin, kube_namespace, kind, name)
        assert obj["metadata"]["generation"] == (2 if kind == "Service" else 1), (kind, name)
        if kind == "Service":
            assert image_of(obj) == "registry.example/govfn:2.0.0"

    uninstalled = run_helm(
        kube_apiserver, helm, "uninstall", "govfn", "-n", kube_namespace, "--wait"
    )
    assert uninstalled.returncode == 0, uninstalled.stderr
    assert stored(kube_admin, kube_namespace) == []


def test_in_a_pod_the_service_account_is_used(
    kube_apiserver: KubeApiServer,
    helm: Path,
    kube_admin: Any,
    kube_namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No kubeconfig: the service account's token (from the TokenRequest API), the API
    server's CA and the namespace, as files in a pod; the account holds the chart's Role."""
    token = kube_apiserver.service_account_token(kube_namespace, "deployer")
    installed = run_helm(
        kube_apiserver, helm, "install", "govfn-rbac", str(CHART), "-n", kube_namespace,
        *rbac_settings(("ServiceAccount", "deployer")),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    await_access(
        kube_apiserver, f"system:serviceaccount:{kube_namespace}:deployer", kube_namespace, "patch"
    )
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(token, encoding="utf-8")
    (account / "ca.crt").write_bytes(kube_apiserver.ca_file.read_bytes())
    (account / "namespace").write_text(f"{kube_namespace}\n", encoding="utf-8")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube_apiserver.port))
    api_client, namespace = connect(Target(), service_account=account)
    try:
        assert namespace == kube_namespace
        registry = load_functions(
            ["govfn.functions.echo"], FunctionRegistry(), include_entry_points=False
        )
        objects = render_all(registry, ManifestOptions(image="img:1", namespace=namespace))
        Applier(api_client, namespace, echo=lambda line: None).apply(objects, dry_run=False)
    finally:
        api_client.close()
    assert stored(kube_admin, kube_namespace) == [
        ("Service", "echo"),
        ("SinkBinding", "echo-chronicle"),
        ("Trigger", "echo-echo-requested"),
    ]
    (account / "token").unlink()
    with pytest.raises(ApplyError, match="not in a cluster"):
        connect(Target(), service_account=account)
