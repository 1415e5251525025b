"""Helpers of the tests against the real kube-apiserver (`support.kube_apiserver`): run
`govfn apply`, read what the server stored, seed objects, play Knative's controller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from govfn.cli.group import cli

IMAGE = ["--image", "registry.example/govfn:1.0.0", "--functions", "govfn.functions"]
PLURALS = {  # kind -> (group, plural)
    "Service": ("serving.knative.dev", "services"),
    "Trigger": ("eventing.knative.dev", "triggers"),
    "SinkBinding": ("sources.knative.dev", "sinkbindings"),
}
ALL_SIX = [
    ("Service", "billing"),
    ("Service", "echo"),
    ("SinkBinding", "billing-chronicle"),
    ("SinkBinding", "echo-chronicle"),
    ("Trigger", "billing-gsap-cr-received"),
    ("Trigger", "echo-echo-requested"),
]
GOVFN_LABELS = {"app.kubernetes.io/managed-by": "govfn", "app.kubernetes.io/part-of": "govfn"}


def apply(kubeconfig: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["apply", *IMAGE, "--kubeconfig", str(kubeconfig), *args], catch_exceptions=False
    )


def stored(admin: Any, namespace: str) -> list[tuple[str, str]]:
    found = []
    for kind, (group, plural) in PLURALS.items():
        listing = admin.list_namespaced_custom_object(group, "v1", namespace, plural)
        found += [(kind, item["metadata"]["name"]) for item in listing["items"]]
    return sorted(found)


def get(admin: Any, namespace: str, kind: str, name: str) -> dict[str, Any]:
    group, plural = PLURALS[kind]
    result: dict[str, Any] = admin.get_namespaced_custom_object(
        group, "v1", namespace, plural, name
    )
    return result


def mark_ready(admin: Any, namespace: str, kind: str, name: str, generation: int) -> None:
    """What Knative's controller would do: Ready=True for `generation`, in `status`."""
    group, plural = PLURALS[kind]
    admin.patch_namespaced_custom_object_status(
        group,
        "v1",
        namespace,
        plural,
        name,
        {
            "status": {
                "observedGeneration": generation,
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        },
        _content_type="application/merge-patch+json",
    )


def one_line(result: Result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def image_of(service: dict[str, Any]) -> str:
    return str(service["spec"]["template"]["spec"]["containers"][0]["image"])


def seed(admin: Any, namespace: str, kind: str, name: str, labels: dict[str, str]) -> None:
    group, plural = PLURALS[kind]
    spec: dict[str, Any] = {
        "Service": {"template": {"spec": {"containers": [{"image": "img"}]}}},
        "Trigger": {
            "broker": "default",
            "subscriber": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "x"}},
        },
        "SinkBinding": {
            "subject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
            "sink": {"uri": "http://sink.example"},
        },
    }[kind]
    body = {
        "apiVersion": f"{group}/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }
    admin.create_namespaced_custom_object(group, "v1", namespace, plural, body)
