"""Options from `govfn.yaml` or `[tool.govfn]` in pyproject.toml, merged with flags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from govfn.cli.group import cli
from govfn.manifest import ManifestError
from govfn.manifest.config import find_config, load_options, read_config


def test_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "govfn.yaml"
    path.write_text(
        "image: registry.example/fn:2\nnamespace: fns\nmax-scale: 5\n"
        "delivery: {retry: 3, backoffPolicy: linear}\nenv: {A: '1'}\n"
        "resources: {limits: {memory: 512Mi}}\nfunctions: [govfn.functions.echo]\n"
    )
    options, modules = load_options({}, path)
    assert options.image == "registry.example/fn:2"
    assert options.namespace == "fns" and options.max_scale == 5
    assert options.delivery.retry == 3 and options.delivery.backoff_policy == "linear"
    assert options.env == {"A": "1"}
    assert options.limits == {"memory": "512Mi"}
    assert modules == ("govfn.functions.echo",)


def test_pyproject_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[project]\nname = "x"\n\n[tool.govfn]\nimage = "img:1"\nmin-scale = 1\n'
        'labels = { team = "a" }\n'
    )
    assert find_config(tmp_path) == path
    options, _ = load_options({}, None, tmp_path)
    assert options.image == "img:1" and options.min_scale == 1 and options.labels == {"team": "a"}


def test_pyproject_without_table_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_config(tmp_path) is None


def test_govfn_yaml_preferred(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.govfn]\nimage = "from-toml"\n')
    (tmp_path / "govfn.yaml").write_text("image: from-yaml\n")
    options, _ = load_options({}, None, tmp_path)
    assert options.image == "from-yaml"


def test_flags_win_and_maps_merge(tmp_path: Path) -> None:
    path = tmp_path / "govfn.yaml"
    path.write_text("image: a\nmax-scale: 5\nlabels: {team: a, tier: web}\ndelivery: {retry: 3}\n")
    flags = {
        "image": "b",
        "max_scale": None,
        "labels": {"team": "b"},
        "delivery": {"timeout": "PT5S"},
    }
    options, _ = load_options(flags, path)
    assert options.image == "b" and options.max_scale == 5
    assert options.labels == {"team": "b", "tier": "web"}
    assert options.delivery.retry == 3 and options.delivery.timeout == "PT5S"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("image: a\nmax_scael: 3\n", "max_scael"),
        ("image: a\nlabels: {team: 1}\n", "labels[team]"),
        ("image: a\nresources: {limits: {cpu: 0.5}}\n", "limits[cpu]"),
        ("image: a\nresources: {limit: {}}\n", "resources.limit"),
        ("image: a\ndelivery: {retries: 1}\n", "delivery.retries"),
        ("image: a\nfunctions: 3\n", "functions"),
        ("- a\n- b\n", "--config"),
        ("image: [unclosed\n", "--config"),
        ("!!python/object:os.system {}\n", "--config"),  # safe_load only
        ("namespace: x\n", "image"),
    ],
)
def test_config_refusals(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "govfn.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_options({}, path)
    assert caught.value.field == field


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"^--config: cannot read"):
        read_config(tmp_path / "nope.yaml")


def test_cli_reads_config_from_cwd(tmp_path: Path) -> None:
    (tmp_path / "govfn.yaml").write_text(
        "image: registry.example/fn:3\nnamespace: shop\nfunctions: [govfn.functions.echo]\n"
    )
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(cli, ["manifests", "--min-scale", "2"], catch_exceptions=False)
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    service, _trigger, _binding = yaml.safe_load_all(result.output)
    assert service["metadata"]["name"] == "echo" and service["metadata"]["namespace"] == "shop"
    template = service["spec"]["template"]
    assert template["metadata"]["annotations"] == {"autoscaling.knative.dev/min-scale": "2"}
    assert template["spec"]["containers"][0]["image"] == "registry.example/fn:3"


def test_cli_config_refusal_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("image: a\ncontainer-concurrency: 5000\n")
    result = CliRunner().invoke(
        cli, ["manifests", "--config", str(path), "--functions", "govfn.functions"]
    )
    assert result.exit_code == 2
    assert "spec.template.spec.containerConcurrency: 5000 is out of range" in result.output
