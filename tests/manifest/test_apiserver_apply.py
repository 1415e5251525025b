"""`govfn apply` against a real kube-apiserver on etcd with Knative's CRDs installed
(`support.kube_apiserver`; one server per session, a namespace per test).

The server validates against the CRDs' structural schemas, keeps field managers, runs dry
runs, enforces RBAC and serves the status subresource. No Knative controller runs: for
`--wait` the test plays the controller by patching `status`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from govfn_manifest_kube import (
    ALL_SIX,
    GOVFN_LABELS,
    IMAGE,
    PLURALS,
    apply,
    get,
    image_of,
    mark_ready,
    one_line,
    seed,
    stored,
)

from govfn.cli.group import cli
from govfn.manifest.apply import ROLE_HINT, Applier, ApplyError, Target, connect
from govfn.manifest.options import ManifestOptions
from govfn.manifest.render import render_all
from govfn.registry import FunctionRegistry, load_functions

from support.kube_apiserver import CRDS, KubeApiServer
from support.postgres import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def kubeconfig(kube_apiserver: KubeApiServer, kube_namespace: str, tmp_path: Path) -> Path:
    """The admin's kubeconfig, its context in this test's namespace."""
    return kube_apiserver.write_kubeconfig(tmp_path / "kubeconfig", namespace=kube_namespace)


def _but_the_apply_time(metadata: dict[str, Any]) -> dict[str, Any]:
    """`metadata` without what a no-op apply may write: its resourceVersion and the time of
    each field-manager entry."""
    kept = {k: v for k, v in metadata.items() if k != "resourceVersion"}
    kept["managedFields"] = [
        {k: v for k, v in entry.items() if k != "time"} for entry in metadata["managedFields"]
    ]
    return kept


def test_apply_creates_every_object(kubeconfig: Path, kube_admin: Any, kube_namespace: str) -> None:
    result = apply(kubeconfig)
    assert result.exit_code == 0, result.output
    assert stored(kube_admin, kube_namespace) == ALL_SIX
    for kind, name in ALL_SIX:
        obj = get(kube_admin, kube_namespace, kind, name)
        assert obj["metadata"]["generation"] == 1
        assert [(f["manager"], f["operation"]) for f in obj["metadata"]["managedFields"]] == [
            ("govfn", "Apply")
        ]
        assert GOVFN_LABELS.items() <= obj["metadata"]["labels"].items()
        assert f"{kind.lower()}/{name} applied" in result.output
    trigger = get(kube_admin, kube_namespace, "Trigger", "echo-echo-requested")
    assert trigger["spec"]["subscriber"]["ref"]["namespace"] == kube_namespace
    assert trigger["spec"]["filter"] == {"attributes": {"type": "ECHO_REQUESTED"}}


def test_reapply_keeps_the_generation_and_an_image_roll_makes_two(
    kubeconfig: Path, kube_admin: Any, kube_namespace: str
) -> None:
    assert apply(kubeconfig).exit_code == 0
    before = {key: get(kube_admin, kube_namespace, *key)["metadata"] for key in ALL_SIX}
    again = apply(kubeconfig)
    assert again.exit_code == 0, again.output
    for key in ALL_SIX:
        metadata = get(kube_admin, kube_namespace, *key)["metadata"]
        assert metadata["generation"] == 1, key
        # Nothing changed but, when the second apply fell in a later second than the first,
        # the time of govfn's field-manager entry (the API server stores that alone).
        assert _but_the_apply_time(metadata) == _but_the_apply_time(before[key]), key
    rolled = apply(kubeconfig, "--image", "registry.example/govfn:2.0.0")
    assert rolled.exit_code == 0, rolled.output
    for kind, name in ALL_SIX:
        obj = get(kube_admin, kube_namespace, kind, name)
        assert obj["metadata"]["generation"] == (2 if kind == "Service" else 1), (kind, name)
        if kind == "Service":
            assert image_of(obj) == "registry.example/govfn:2.0.0"


def test_dry_run_stores_nothing(kubeconfig: Path, kube_admin: Any, kube_namespace: str) -> None:
    result = apply(kubeconfig, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.count("applied (dry run)") == 6
    assert stored(kube_admin, kube_namespace) == []
    assert apply(kubeconfig).exit_code == 0
    rolled = apply(kubeconfig, "--dry-run", "--image", "registry.example/govfn:2.0.0")
    assert rolled.exit_code == 0, rolled.output
    echo = get(kube_admin, kube_namespace, "Service", "echo")
    assert echo["metadata"]["generation"] == 1
    assert image_of(echo) == "registry.example/govfn:1.0.0"


def test_namespace_and_context_flags(
    kube_apiserver: KubeApiServer, kube_admin: Any, kube_namespace: str, tmp_path: Path
) -> None:
    team = kube_apiserver.create_namespace(f"{kube_namespace[:50]}-team")
    other = kube_apiserver.create_namespace(f"{kube_namespace[:50]}-other")
    kubeconfig = kube_apiserver.write_kubeconfig(
        tmp_path / "kubeconfig", namespace=kube_namespace, contexts={"other": other}
    )
    assert apply(kubeconfig, "--namespace", team).exit_code == 0
    assert apply(kubeconfig, "--context", "other").exit_code == 0
    assert stored(kube_admin, kube_namespace) == []
    assert stored(kube_admin, team) == stored(kube_admin, other) == ALL_SIX
    trigger = get(kube_admin, team, "Trigger", "echo-echo-requested")
    assert trigger["spec"]["subscriber"]["ref"]["namespace"] == team


def test_prune_deletes_only_this_app_s_stale_objects_dry_run_first(
    kube_apiserver: KubeApiServer, kubeconfig: Path, kube_admin: Any, kube_namespace: str
) -> None:
    elsewhere = kube_apiserver.create_namespace(f"{kube_namespace[:50]}-else")
    seed(kube_admin, kube_namespace, "Service", "retired", GOVFN_LABELS)
    seed(kube_admin, kube_namespace, "Trigger", "retired-thing", GOVFN_LABELS)
    seed(kube_admin, kube_namespace, "SinkBinding", "retired-chronicle", GOVFN_LABELS)
    shop = {**GOVFN_LABELS, "app.kubernetes.io/part-of": "shop"}
    seed(kube_admin, kube_namespace, "Service", "other-app", shop)
    seed(kube_admin, kube_namespace, "Service", "hand-made", {"app.kubernetes.io/part-of": "govfn"})
    seed(kube_admin, elsewhere, "Service", "retired", GOVFN_LABELS)
    seeded = stored(kube_admin, kube_namespace)

    dry = apply(kubeconfig, "--prune", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "service/retired pruned (dry run)" in dry.output
    assert stored(kube_admin, kube_namespace) == seeded  # the dry run applied nothing either

    result = apply(kubeconfig, "--prune")
    assert result.exit_code == 0, result.output
    assert stored(kube_admin, kube_namespace) == sorted(
        [*ALL_SIX, ("Service", "other-app"), ("Service", "hand-made")]
    )
    pruned = [line for line in result.output.splitlines() if line.endswith(" pruned")]
    assert pruned == [  # Triggers and SinkBindings first: nothing points at a deleted Service
        "trigger/retired-thing pruned",
        "sinkbinding/retired-chronicle pruned",
        "service/retired pruned",
    ]
    assert stored(kube_admin, elsewhere) == [("Service", "retired")]


def test_prune_removes_sink_bindings_no_longer_rendered(
    kubeconfig: Path, kube_admin: Any, kube_namespace: str
) -> None:
    assert apply(kubeconfig).exit_code == 0
    result = apply(kubeconfig, "--chronicle-sink", "none", "--prune")
    assert result.exit_code == 0, result.output
    assert stored(kube_admin, kube_namespace) == [k for k in ALL_SIX if k[0] != "SinkBinding"]
    assert "sinkbinding/echo-chronicle pruned" in result.output


def test_wait_returns_once_the_controller_reports_ready(
    kubeconfig: Path, kube_admin: Any, kube_namespace: str
) -> None:
    """The real CLI process waits; this test plays Knative's controller once it does."""
    command = [sys.executable, "-m", "govfn", "apply", *IMAGE, "--kubeconfig"]
    process = subprocess.Popen(
        [*command, str(kubeconfig), "--wait", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("waiting for 6 object(s) to become ready"):
                break
        assert lines[-1].startswith("waiting for 6"), lines
        for kind, name in ALL_SIX:
            mark_ready(kube_admin, kube_namespace, kind, name, generation=1)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    output = lines + rest.splitlines()
    assert process.returncode == 0, output
    assert sorted(line for line in output if line.endswith(" ready")) == sorted(
        f"{kind.lower()}/{name} ready" for kind, name in ALL_SIX
    )


def test_wait_needs_the_current_generation_observed(
    kubeconfig: Path, kube_admin: Any, kube_namespace: str
) -> None:
    no_status = apply(kubeconfig, "--wait", "--timeout", "0.3")
    assert no_status.exit_code == 1
    assert "--wait: not ready after 0.3s: service/billing (no Ready condition yet)" in (
        no_status.output
    )
    for key in ALL_SIX:
        mark_ready(kube_admin, kube_namespace, *key, generation=1)
    rolled = apply(
        kubeconfig, "--image", "registry.example/govfn:2.0.0", "--wait", "--timeout", "1"
    )
    assert rolled.exit_code == 1  # Ready, but for generation 1
    assert "service/billing (not yet observed), service/echo (not yet observed)" in rolled.output
    assert "trigger/echo-echo-requested ready" in rolled.output
    mark_ready(kube_admin, kube_namespace, "Service", "billing", generation=2)
    mark_ready(kube_admin, kube_namespace, "Service", "echo", generation=2)
    caught_up = apply(kubeconfig, "--image", "registry.example/govfn:2.0.0", "--wait")
    assert caught_up.exit_code == 0, caught_up.output
    assert "waiting" not in caught_up.output


# -- error paths: one line, exit 1, nothing applied --------------------------------------


def test_a_bad_token_is_401(
    kube_apiserver: KubeApiServer, kube_admin: Any, kube_namespace: str, tmp_path: Path
) -> None:
    kubeconfig = kube_apiserver.write_kubeconfig(
        tmp_path / "kubeconfig", namespace=kube_namespace, token="rotated"
    )
    result = apply(kubeconfig)
    assert result.exit_code == 1
    assert one_line(result) == "Error: discovery /apis: HTTP 401: Unauthorized"
    assert stored(kube_admin, kube_namespace) == []


def test_a_user_without_the_role_is_403(
    kube_apiserver: KubeApiServer, kube_admin: Any, kube_namespace: str, tmp_path: Path
) -> None:
    kubeconfig = kube_apiserver.write_kubeconfig(
        tmp_path / "kubeconfig", user="deployer", namespace=kube_namespace
    )
    result = apply(kubeconfig)
    assert result.exit_code == 1
    line = one_line(result)
    assert line.startswith("Error: Service 'billing': HTTP 403: "), line
    assert 'User "deployer" cannot patch resource "services"' in line
    assert line.endswith(f"; {ROLE_HINT}"), line
    assert stored(kube_admin, kube_namespace) == []


def test_a_missing_namespace(kubeconfig: Path, kube_admin: Any, kube_namespace: str) -> None:
    result = apply(kubeconfig, "--namespace", "absent")
    assert result.exit_code == 1
    assert one_line(result) == "Error: Service 'billing': HTTP 404: namespaces \"absent\" not found"
    assert stored(kube_admin, "absent") == []


def test_an_unreachable_server(kube_apiserver: KubeApiServer, tmp_path: Path) -> None:
    closed = f"https://127.0.0.1:{free_port()}"
    kubeconfig = kube_apiserver.write_kubeconfig(tmp_path / "kubeconfig", server=closed)
    result = apply(kubeconfig)
    assert result.exit_code == 1
    line = one_line(result)
    assert line.startswith("Error: discovery /apis: cannot reach the API server: "), line
    assert "Connection refused" in line


def _serves(admin: Any, group: str, plural: str) -> bool:
    from kubernetes import client

    resources = client.CustomObjectsApi(admin.api_client).get_api_resources(group, "v1")
    return plural in {resource.name for resource in resources.resources}


def _until(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout}s")
        time.sleep(0.1)


@pytest.fixture
def without_triggers(kube_apiserver: KubeApiServer, kube_admin: Any) -> Iterator[None]:
    """The Trigger CRD deleted (Knative Eventing half missing), installed again afterwards."""
    kube_apiserver.must("delete", "crd", "triggers.eventing.knative.dev", "--timeout=60s")
    try:
        _until(lambda: not _serves(kube_admin, "eventing.knative.dev", "triggers"), "gone")
        yield
    finally:
        kube_apiserver.install_crds(CRDS, ["eventing-trigger.yaml"])
        _until(lambda: _serves(kube_admin, "eventing.knative.dev", "triggers"), "served")


def test_a_missing_crd(
    without_triggers: None, kubeconfig: Path, kube_admin: Any, kube_namespace: str
) -> None:
    result = apply(kubeconfig)
    assert result.exit_code == 1
    assert one_line(result) == (
        "Error: discovery eventing.knative.dev/v1: the cluster does not serve Trigger "
        "(triggers); is Knative installed?"
    )
    assert stored_without_triggers(kube_admin, kube_namespace) == []


def stored_without_triggers(admin: Any, namespace: str) -> list[tuple[str, str]]:
    found = []
    for kind in ("Service", "SinkBinding"):
        group, plural = PLURALS[kind]
        listing = admin.list_namespaced_custom_object(group, "v1", namespace, plural)
        found += [(kind, item["metadata"]["name"]) for item in listing["items"]]
    return found


def test_refused_manifest_never_reaches_the_server(
    kube_apiserver: KubeApiServer, tmp_path: Path
) -> None:
    """Pointed at a closed port: a refusal (exit 2) shows that nothing was even connected."""
    closed = f"https://127.0.0.1:{free_port()}"
    kubeconfig = kube_apiserver.write_kubeconfig(tmp_path / "kubeconfig", server=closed)
    result = apply(kubeconfig, "--env", "K_REVISION=x")
    assert result.exit_code == 2 and "K_REVISION is reserved" in result.output


def test_without_the_apply_extra_the_error_names_it(
    kubeconfig: Path, kube_admin: Any, kube_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        for name in [m for m in sys.modules if m == "kubernetes" or m.startswith("kubernetes.")]:
            patched.delitem(sys.modules, name)
        patched.setitem(sys.modules, "kubernetes", None)  # `import kubernetes` fails
        result = apply(kubeconfig)
    assert result.exit_code == 1
    assert "kubernetes: govfn apply needs the Kubernetes client" in result.output
    assert "pip install 'govfn[apply]'" in result.output
    assert stored(kube_admin, kube_namespace) == []


def test_missing_kubeconfig(tmp_path: Path) -> None:
    result = apply(tmp_path / "absent")
    assert result.exit_code == 1 and "--kubeconfig" in result.output


# -- what the server's schemas and field managers do ------------------------------------


def _applier(kubeconfig: Path) -> tuple[Any, Applier]:
    api_client, namespace = connect(Target(kubeconfig=str(kubeconfig)))
    return api_client, Applier(api_client, namespace, echo=lambda line: None)


def test_the_server_refuses_a_field_the_crd_does_not_declare(
    kubeconfig: Path, kube_admin: Any, kube_namespace: str
) -> None:
    registry = load_functions(
        ["govfn.functions.echo"], FunctionRegistry(), include_entry_points=False
    )
    service, _, binding = render_all(registry, ManifestOptions(image="img"))
    service["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    binding["spec"]["sink"]["uri"] = 7  # a string in the CRD
    api_client, applier = _applier(kubeconfig)
    try:
        with pytest.raises(ApplyError) as typo:
            applier.apply([service], dry_run=False)
        with pytest.raises(ApplyError) as number:
            applier.apply([binding], dry_run=False)
    finally:
        api_client.close()
    assert typo.value.field == "Service 'echo'"
    assert ".spec.template.spec.containers[0].imagee: field not declared in schema" in str(
        typo.value
    )
    assert number.value.field == "SinkBinding 'echo-chronicle'"
    assert "spec.sink.uri" in str(number.value) and "string" in str(number.value)
    assert stored(kube_admin, kube_namespace) == []


def test_force_takes_over_fields_of_another_manager(
    kube_apiserver: KubeApiServer, kubeconfig: Path, kube_admin: Any, kube_namespace: str
) -> None:
    edited = render_all(
        load_functions(["govfn.functions.echo"], FunctionRegistry(), include_entry_points=False),
        ManifestOptions(image="registry.example/govfn:0.9.0", namespace=kube_namespace),
    )[0]
    import yaml

    kube_apiserver.must(
        "apply", "--server-side", "--field-manager=kubectl-edit", "-f", "-",
        input=yaml.safe_dump(edited),
    )  # fmt: skip
    result = apply(kubeconfig)
    assert result.exit_code == 0, result.output
    echo = get(kube_admin, kube_namespace, "Service", "echo")
    assert image_of(echo) == "registry.example/govfn:1.0.0"
    assert echo["metadata"]["generation"] == 2
    assert ("govfn", "Apply") in [
        (f["manager"], f["operation"]) for f in echo["metadata"]["managedFields"]
    ]


def test_database_secret_and_sink_binding_as_stored(
    kubeconfig: Path, kube_admin: Any, kube_namespace: str
) -> None:
    """The CRDs' structural schemas keep every field govfn renders (nothing pruned)."""
    result = apply(
        kubeconfig,
        "--database-secret", "pg:dsn", "--var-size-limit", "256Mi", "--broker", "events",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    pod = get(kube_admin, kube_namespace, "Service", "billing")["spec"]["template"]["spec"]
    env = {entry["name"]: entry for entry in pod["containers"][0]["env"]}
    assert env["GOVFN_CHRONICLE"]["valueFrom"] == {"secretKeyRef": {"name": "pg", "key": "dsn"}}
    assert env["GOVFN_CHRONICLE_SPOOL"]["value"] == "/var/lib/govfn/spool"
    assert pod["volumes"][0] == {"name": "ledger", "emptyDir": {"sizeLimit": "256Mi"}}
    binding = get(kube_admin, kube_namespace, "SinkBinding", "billing-chronicle")
    assert binding["spec"] == {
        "subject": {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "name": "billing",
            "namespace": kube_namespace,
        },
        "sink": {
            "ref": {
                "apiVersion": "eventing.knative.dev/v1",
                "kind": "Broker",
                "name": "events",
                "namespace": kube_namespace,
            }
        },
    }


def test_kubectl_applies_govfn_manifests_under_strict_validation(
    kube_apiserver: KubeApiServer, kubeconfig: Path, kube_admin: Any, kube_namespace: str
) -> None:
    """`govfn manifests | kubectl apply --server-side --validate=strict`: the real kubectl, an
    independent client, and the server's strict field validation find nothing to refuse."""
    manifests = CliRunner().invoke(
        cli, ["manifests", *IMAGE, "--namespace", kube_namespace], catch_exceptions=False
    )
    assert manifests.exit_code == 0, manifests.output
    side = ("apply", "--server-side", "--field-manager=govfn", "--validate=strict", "-f", "-")
    dry = kube_apiserver.kubectl(*side, "--dry-run=server", input=manifests.output)
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr == ""  # not even a warning
    assert stored(kube_admin, kube_namespace) == []
    real = kube_apiserver.kubectl(*side, input=manifests.output)
    assert real.returncode == 0, real.stderr
    assert "service.serving.knative.dev/billing serverside-applied" in real.stdout
    assert stored(kube_admin, kube_namespace) == ALL_SIX
    again = apply(kubeconfig)  # govfn takes over its own field manager's objects
    assert again.exit_code == 0, again.output
    assert get(kube_admin, kube_namespace, "Service", "echo")["metadata"]["generation"] == 1


def test_sender_identity_objects_as_stored(
    kubeconfig: Path, kube_admin: Any, kube_namespace: str
) -> None:
    """With --oidc-issuer the Triggers carry their subscriber's audience and the Services the
    verifier's settings: the CRDs keep them (a field they did not declare would be refused)."""
    result = apply(
        kubeconfig, "--oidc-issuer", "https://kubernetes.default.svc", "--event-sender", "triggers"
    )
    assert result.exit_code == 0, result.output
    assert stored(kube_admin, kube_namespace) == ALL_SIX
    trigger = get(kube_admin, kube_namespace, "Trigger", "echo-echo-requested")
    rendered = render_all(
        load_functions(["govfn.functions"], FunctionRegistry(), include_entry_points=False),
        ManifestOptions(
            image="registry.example/govfn:1.0.0",
            namespace=kube_namespace,
            oidc_issuer="https://kubernetes.default.svc",
            event_senders=("triggers",),
        ),
    )
    expected = next(o for o in rendered if o["metadata"]["name"] == "echo-echo-requested")
    assert trigger["spec"] == expected["spec"]
    assert "audience" in trigger["spec"]["subscriber"]
    service = get(kube_admin, kube_namespace, "Service", "echo")
    env = {e["name"] for e in service["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"GOVFN_OIDC_ISSUER", "GOVFN_OIDC_AUDIENCE"} <= env
