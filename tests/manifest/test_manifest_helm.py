"""charts/govfn with the real helm binary (make .tools/bin/helm fetches it)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from govfn_manifest_schemas import schema_errors

from conftest import HERE, REPO
from govfn.cli.group import cli

CHART = REPO / "charts" / "govfn"
OPTIONS = [
    "--image",
    "registry.example/govfn:1.0.0",
    "--namespace",
    "shop",
    "--broker",
    "events",
    "--app",
    "shop",
    "--name-prefix",
    "shop-",
    "--min-scale",
    "1",
    "--max-scale",
    "10",
    "--concurrency",
    "20",
    "--container-concurrency",
    "50",
    "--timeout-seconds",
    "300",
    "--service-account",
    "functions",
    "--retry",
    "4",
    "--backoff-policy",
    "exponential",
    "--backoff-delay",
    "PT0.2S",
    "--dead-letter-sink",
    "https://dlq.example/e",
    "--delivery-timeout",
    "PT5S",
    "--filter",
    "source=/shop",
    "--label",
    "team=pay",
    "--annotation",
    "example.com/owner=pay",
    "--env",
    "LOG_LEVEL=debug",
    "--env",
    "RETRIES=3",
]
FUNCTIONS = ["--functions", "govfn.functions", "--functions", "govfn_manifest_samples"]


def helm_run(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=60, cwd=HERE)


def govfn_manifests(tmp_path: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["manifests", *FUNCTIONS, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def objects(text: str) -> list[dict[str, Any]]:
    found = [doc for doc in yaml.safe_load_all(text) if doc]
    return sorted(found, key=lambda doc: (doc["kind"], doc["metadata"]["name"]))


@pytest.mark.parametrize(
    "options",
    [OPTIONS, ["--image", "img:1", "--visibility", "public"]],
    ids=["all-options", "defaults"],
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
    assert [(o["kind"], o["metadata"]["name"]) for o in from_helm] == [
        (o["kind"], o["metadata"]["name"]) for o in from_govfn
    ]
    assert len(from_govfn) == 4 + 5 + 4  # four functions, five trigger types, a SinkBinding each
    assert any(len(o["metadata"]["name"]) == 63 for o in from_govfn)  # the hash path is covered
    assert from_helm == from_govfn
    for obj in from_helm:
        assert schema_errors(obj) == []


def test_lint_strict_with_default_values(helm: Path) -> None:
    lint = helm_run(helm, "lint", "--strict", str(CHART))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = helm_run(helm, "template", "govfn", str(CHART))
    assert rendered.returncode == 0 and objects(rendered.stdout) == []


def test_chart_refuses_missing_image_and_bad_prefix(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(govfn_manifests(tmp_path, "--image", "img", "--format", "helm-values"))
    no_image = helm_run(helm, "template", "govfn", str(CHART), "-f", str(values), "--set", "image=")
    assert no_image.returncode != 0 and "image is required" in no_image.stderr
    bad = helm_run(
        helm, "template", "govfn", str(CHART), "-f", str(values), "--set", "namePrefix=Bad"
    )
    assert bad.returncode != 0 and "namePrefix" in bad.stderr


def test_values_schema_refuses_what_knative_would(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(govfn_manifests(tmp_path, "--image", "img", "--format", "helm-values"))
    for setting, message in [
        ("containerConcurrency=2000", "/containerConcurrency"),
        ("timeoutSeconds=601", "/timeoutSeconds"),
        ("visibility=internal", "/visibility"),
        ("delivery.backoffPolicy=random", "/delivery/backoffPolicy"),
        ("env.N=1", "/env/N"),
    ]:
        args = ("template", "govfn", str(CHART), "-f", str(values), "--set", setting)
        refused = helm_run(helm, *args)
        assert refused.returncode != 0 and message in refused.stderr, (setting, refused.stderr)


def test_the_broker_is_rendered_only_when_asked_for(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(govfn_manifests(tmp_path, *OPTIONS, "--format", "helm-values"))
    base = ("template", "govfn", str(CHART), "-f", str(values))
    without = objects(helm_run(helm, *base).stdout)
    assert "Broker" not in {obj["kind"] for obj in without}
    rendered = helm_run(
        helm, *base, "--set", "createBroker=true", "--set", "brokerDelivery.retry=3"
    )
    assert rendered.returncode == 0, rendered.stderr
    brokers = [obj for obj in objects(rendered.stdout) if obj["kind"] == "Broker"]
    assert len(brokers) == 1 and schema_errors(brokers[0]) == []
    broker = brokers[0]
    triggers = [obj for obj in without if obj["kind"] == "Trigger"]
    assert {t["spec"]["broker"] for t in triggers} == {broker["metadata"]["name"]} == {"events"}
    assert broker["metadata"]["namespace"] == "shop" and broker["spec"]["delivery"] == {"retry": 3}
    assert broker["metadata"]["labels"]["app.kubernetes.io/part-of"] == "shop"
    assert broker["metadata"]["labels"]["team"] == "pay"
    bad = helm_run(helm, *base, "--set", "brokerDelivery.backoffPolicy=random")
    assert bad.returncode != 0 and "/brokerDelivery/backoffPolicy" in bad.stderr


@pytest.mark.parametrize(
    "options",
    [
        ["--image", "img:1", "--chronicle-sink", "none"],
        [
            *OPTIONS,
            "--chronicle-sink",
            "https://records.example/in",
            "--database-secret",
            "pg-chronicle:dsn",
            "--var-size-limit",
            "512Mi",
        ],
        ["--image", "img:1", "--broker", "events", "--database-secret", "pg"],
        ["--image", "img:1", "--namespace", "shop", "--chronicle-sink", "broker:chronicle"],
    ],
    ids=["no-binding", "url-sink-and-secret", "broker-and-secret", "other-broker"],
)
def test_template_equals_govfn_manifests_for_sinks_and_secrets(
    helm: Path, tmp_path: Path, options: list[str]
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(govfn_manifests(tmp_path, *options, "--format", "helm-values"))
    lint = helm_run(helm, "lint", "--strict", str(CHART), "-f", str(values))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = helm_run(helm, "template", "govfn", str(CHART), "-f", str(values))
    assert rendered.returncode == 0, rendered.stderr
    from_helm = objects(rendered.stdout)
    from_govfn = objects(govfn_manifests(tmp_path, *options))
    assert from_helm == from_govfn
    bindings = [obj for obj in from_govfn if obj["kind"] == "SinkBinding"]
    assert len(bindings) == (0 if "none" in options else 4)
    secret = "--database-secret" in options
    for obj in from_helm:
        assert schema_errors(obj) == []
        if obj["kind"] == "Service":
            container = obj["spec"]["template"]["spec"]["containers"][0]
            env = {entry["name"]: entry for entry in container["env"]}
            assert ("valueFrom" in env["GOVFN_CHRONICLE"]) is secret
            assert ("GOVFN_CHRONICLE_SPOOL" in env) is secret
            volume = obj["spec"]["template"]["spec"]["volumes"][0]
            size = "512Mi" if "512Mi" in options else "1Gi"
            assert volume == {"name": "ledger", "emptyDir": {"sizeLimit": size}}


def _values(tmp_path: Path) -> tuple[str, ...]:
    values = tmp_path / "values.yaml"
    values.write_text(govfn_manifests(tmp_path, "--image", "img", "--format", "helm-values"))
    return ("template", "govfn", str(CHART), "-f", str(values))


def test_chart_values_for_sinks_secrets_and_size(helm: Path, tmp_path: Path) -> None:
    base = _values(tmp_path)
    none = helm_run(helm, *base, "--set", "chronicleSink=none")
    assert none.returncode == 0, none.stderr
    assert "SinkBinding" not in {obj["kind"] for obj in objects(none.stdout)}
    secret = helm_run(helm, *base, "--set", "databaseSecret.name=pg", "--set", "varSizeLimit=2Gi")
    assert secret.returncode == 0, secret.stderr
    services = [obj for obj in objects(secret.stdout) if obj["kind"] == "Service"]
    assert len(services) == 4
    for service in services:
        pod = service["spec"]["template"]["spec"]
        env = {entry["name"]: entry for entry in pod["containers"][0]["env"]}
        assert env["GOVFN_CHRONICLE"]["valueFrom"] == {"secretKeyRef": {"name": "pg", "key": "uri"}}
        assert env["GOVFN_CHRONICLE_SPOOL"]["value"] == "/var/lib/govfn/spool"
        assert pod["volumes"][0]["emptyDir"] == {"sizeLimit": "2Gi"}
        assert schema_errors(service) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["--set", "chronicleSink=ftp://records"], "/chronicleSink"),
        (["--set", "chronicleSink=broker:Bad_Name"], "/chronicleSink"),
        (["--set", "chronicleSink=https://"], "/chronicleSink"),
        (["--set", "databaseSecret.name=Bad_Name"], "/databaseSecret/name"),
        (["--set", "databaseSecret.key=a b"], "/databaseSecret/key"),
        (["--set", "databaseSecret.user=x"], "/databaseSecret"),
        (["--set", "varSizeLimit=lots"], "/varSizeLimit"),
        (["--set", "varSizeLimit=1"], "/varSizeLimit"),  # an int: quantities are strings
        (["--set-string", "varSizeLimit=0"], 'varSizeLimit: "0" is not a positive quantity'),
        (["--set-string", "varSizeLimit=0.0Gi"], 'varSizeLimit: "0.0Gi" is not a positive'),
        (
            ["--set", "databaseSecret.name=pg", "--set", "env.GOVFN_CHRONICLE=/tmp/x.db"],
            "env[GOVFN_CHRONICLE]: conflicts with databaseSecret",
        ),
        (["--set", "env.K_SINK=http://x"], "env[K_SINK]: is injected by the SinkBinding"),
        (["--set", "serviceAccount=Bad_Name"], "/serviceAccount"),
        (["--set", "image=UPPER/govfn:1"], "/image"),
        (["--set", "image=registry.example/govfn@sha256:abc"], "/image"),
        (["--set", "image=registry.example/govfn :1"], "/image"),
    ],
)
def test_chart_refuses_what_govfn_manifests_refuses(
    helm: Path, tmp_path: Path, settings: list[str], message: str
) -> None:
    refused = helm_run(helm, *_values(tmp_path), *settings)
    assert refused.returncode != 0 and message in refused.stderr, (settings, refused.stderr)


def test_chart_lets_k_sink_be_set_without_a_binding(helm: Path, tmp_path: Path) -> None:
    args = ("--set", "chronicleSink=none", "--set", "env.K_SINK=http://x")
    rendered = helm_run(helm, *_values(tmp_path), *args)
    assert rendered.returncode == 0, rendered.stderr
    service = next(obj for obj in objects(rendered.stdout) if obj["kind"] == "Service")
    env = service["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "K_SINK", "value": "http://x"} in env
