"""`govfn manifests`: formats, byte-identical output, refusals that exit 2 naming the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

import govfn.manifest
from conftest import HERE
from govfn.cli.group import cli
from govfn.manifest import ManifestOptions, render_yaml
from govfn.registry import FunctionRegistry

IMAGE = ["--image", "registry.example/govfn:1.0.0"]


def run(*args: str, cwd: Path | None = None) -> Result:
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, ["manifests", *args], catch_exceptions=False)
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli, ["manifests", *args], catch_exceptions=False)
    finally:
        os.chdir(old)


def test_exported_names() -> None:
    assert sorted(govfn.manifest.__all__) == sorted(
        [
            "Delivery",
            "ManifestError",
            "ManifestOptions",
            "dump_json_list",
            "dump_yaml",
            "helm_values",
            "render_all",
            "render_function",
            "render_output",
            "render_yaml",
            "validate_object",
            "validate_objects",
        ]
    )
    from govfn.manifest import errors, options, output, render, validate

    defined_in = {
        errors: ["ManifestError"],
        options: ["Delivery", "ManifestOptions"],
        output: ["dump_json_list", "dump_yaml", "helm_values", "render_output", "render_yaml"],
        render: ["render_all", "render_function"],
        validate: ["validate_object", "validate_objects"],
    }
    exported = sorted(name for names in defined_in.values() for name in names)
    assert exported == sorted(govfn.manifest.__all__)
    for module, names in defined_in.items():
        for name in names:  # the package re-exports each name from where it is defined
            assert getattr(govfn.manifest, name) is getattr(module, name), name


def test_yaml_stream(tmp_path: Path) -> None:
    result = run(*IMAGE, "--functions", "govfn.functions", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.output))
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("Service", "billing"),
        ("Trigger", "billing-gsap-cr-received"),
        ("SinkBinding", "billing-chronicle"),
        ("Service", "echo"),
        ("Trigger", "echo-echo-requested"),
        ("SinkBinding", "echo-chronicle"),
    ]
    assert result.output.startswith("---\n")


def test_byte_identical_across_processes(tmp_path: Path) -> None:
    args = [
        sys.executable,
        "-m",
        "govfn",
        "manifests",
        *IMAGE,
        "--functions",
        "govfn.functions",
        "--functions",
        "govfn_manifest_samples",
        "--label",
        "b=2",
        "--label",
        "a=1",
        "--env",
        "Z=1",
        "--env",
        "A=2",
    ]
    env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONHASHSEED": "random"}
    outputs = {
        subprocess.run(
            args, capture_output=True, check=True, env=env, cwd=tmp_path, timeout=60
        ).stdout
        for _ in range(2)
    }
    assert len(outputs) == 1
    assert b"shipping-with-a-rather-long-function-identifier-for-truncation" in outputs.pop()


def test_same_bytes_as_pure_python_dumper(builtins: FunctionRegistry) -> None:
    options = ManifestOptions(
        image="img", env={"YES": "yes", "NUM": "1", "NUL": "null"}, labels={"on": "on"}
    )
    text = render_yaml(builtins, options)
    objects = govfn.manifest.render_all(builtins, options)
    expected = yaml.dump_all(
        objects,
        Dumper=yaml.SafeDumper,
        sort_keys=False,
        allow_unicode=True,
        explicit_start=True,
        width=4096,
        default_flow_style=False,
    )
    assert text == expected
    assert list(yaml.safe_load_all(text)) == objects  # strings like "yes" stay strings


def test_json_list(tmp_path: Path) -> None:
    result = run(*IMAGE, "--functions", "govfn.functions", "--format", "json", cwd=tmp_path)
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["apiVersion"] == "v1" and document["kind"] == "List"
    assert [item["kind"] for item in document["items"]] == ["Service", "Trigger", "SinkBinding"] * 2
    assert document["items"] == list(
        yaml.safe_load_all(run(*IMAGE, "--functions", "govfn.functions", cwd=tmp_path).output)
    )


def test_output_file(tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    result = run(*IMAGE, "--functions", "govfn.functions", "-o", str(target), cwd=tmp_path)
    assert result.exit_code == 0 and result.output == ""
    kinds = [d["kind"] for d in yaml.safe_load_all(target.read_text())]
    assert kinds == ["Service", "Trigger", "SinkBinding"] * 2


def test_http_view_call(builtins: FunctionRegistry) -> None:
    plugin = builtins.get("echo")
    assert plugin is not None
    text = render_yaml([plugin], ManifestOptions(image="img", namespace="ns", broker="b"))
    kinds = [d["kind"] for d in yaml.safe_load_all(text)]
    assert kinds == ["Service", "Trigger", "SinkBinding"] and "broker: b\n" in text


def test_manifest_import_does_not_load_kubernetes() -> None:
    code = (
        "import sys, govfn.manifest, govfn.cli.manifests; "
        "print('kubernetes' in sys.modules, 'jsonschema' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]


def test_core_does_not_load_yaml() -> None:
    code = "import sys, govfn, govfn.function, govfn.registry; print('yaml' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (
            ["--container-concurrency", "1001"],
            "spec.template.spec.containerConcurrency: 1001 is out of range",
        ),
        (["--timeout-seconds", "601"], "spec.template.spec.timeoutSeconds: 601 is out of range"),
        (["--env", "PORT=9000"], "spec.template.spec.containers[0].env[1].name: PORT is reserved"),
        (["--env", "K_SERVICE=x"], "K_SERVICE is reserved"),
        (
            ["--annotation", "autoscaling.knative.dev/min-scale=1"],
            "metadata.annotations[autoscaling.knative.dev/min-scale]",
        ),
        (["--filter", "Source=x"], "spec.filter.attributes[Source]"),
        (["--backoff-delay", "5s"], "spec.delivery.backoffDelay: '5s' is not an ISO-8601 duration"),
        (["--retry", "-1"], "spec.delivery.retry"),
        (["--dead-letter-sink", "nowhere"], "delivery.deadLetterSink: 'nowhere' is neither"),
        (["--label", "team=a b"], "metadata.labels[team]"),
        (["--min-scale", "3", "--max-scale", "2"], "max-scale]: 2 is below min-scale 3"),
        (["--name-prefix", "Shop-"], "name_prefix: 'Shop-'"),
        (["--namespace", "Bad_NS"], "metadata.namespace"),
    ],
)
def test_refusals_exit_2_naming_the_field(flags: list[str], field: str, tmp_path: Path) -> None:
    result = run(*IMAGE, "--functions", "govfn.functions", *flags, cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert field in result.output
    assert result.output.startswith("Error: ")


def test_image_required(tmp_path: Path) -> None:
    result = run("--functions", "govfn.functions", cwd=tmp_path)
    assert result.exit_code == 2 and "image: an image is required" in result.output


def test_reply_loop_refused_and_allowed(tmp_path: Path) -> None:
    (tmp_path / "loopy.py").write_text(
        "from govfn import governed_function\n"
        "@governed_function('loopy', trigger_events=['PING'], emits=['PING'])\n"
        "def loopy(event, context):\n    return event\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        refused = run(*IMAGE, "--functions", "loopy", cwd=tmp_path)
        allowed = run(*IMAGE, "--functions", "loopy", "--allow-reply-loops", cwd=tmp_path)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("loopy", None)
    assert refused.exit_code == 2 and "functions[loopy].emits: reply loop" in refused.output
    assert allowed.exit_code == 0
    service = next(yaml.safe_load_all(allowed.output))
    args = service["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["serve", "--function", "loopy", "--functions", "loopy", "--single-process"]


def test_bad_pair_flag(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["manifests", *IMAGE, "--env", "NOVALUE"])
    assert result.exit_code == 2 and "is not KEY=VALUE" in result.output
