"""The Chronicle on a shared database (`--database-secret`) and the emptyDir's growth cap
(`--var-size-limit`): what the Service's container and volumes become, the vendored Service
CRD made strict, and the rules (Kubernetes' and Knative's) the schema leaves to the webhook."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from govfn_manifest_schemas import schema_errors

from conftest import MakePlugin
from govfn.cli.group import cli
from govfn.manifest import ManifestError, ManifestOptions, render_all, validate_object
from govfn.manifest.config import load_options

Obj = dict[str, Any]
IMAGE = ["--image", "registry.example/govfn:1.0.0", "--functions", "govfn.functions.echo"]
C = "spec.template.spec.containers[0]"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["manifests", *IMAGE, *args], catch_exceptions=False)


def service_of(objects: list[Obj]) -> Obj:
    services = [obj for obj in objects if obj["kind"] == "Service"]
    assert len(services) == 1
    return services[0]


def container(service: Obj) -> Obj:
    found: Obj = service["spec"]["template"]["spec"]["containers"][0]
    return found


def env_of(service: Obj) -> dict[str, Obj]:
    return {entry["name"]: entry for entry in container(service)["env"]}


def test_database_secret_feeds_govfn_chronicle(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    service = service_of(render_all([make_plugin("pg")], replace(options, database_secret="pg")))
    env = env_of(service)
    assert env["GOVFN_CHRONICLE"] == {
        "name": "GOVFN_CHRONICLE",
        "valueFrom": {"secretKeyRef": {"name": "pg", "key": "uri"}},
    }
    mount = container(service)["volumeMounts"][0]
    assert mount["name"] == "ledger"
    assert env["GOVFN_CHRONICLE_SPOOL"]["value"].startswith(mount["mountPath"] + "/")
    assert [entry["name"] for entry in container(service)["env"]] == sorted(env)
    assert schema_errors(service) == []
    custom = service_of(
        render_all([make_plugin("pg")], replace(options, database_secret="chronicle.db-1:dsn"))
    )
    assert env_of(custom)["GOVFN_CHRONICLE"]["valueFrom"] == {
        "secretKeyRef": {"name": "chronicle.db-1", "key": "dsn"}
    }


def test_without_a_secret_the_ledger_file_and_no_spool_variable(
    make_plugin: MakePlugin, options: ManifestOptions
) -> None:
    env = env_of(service_of(render_all([make_plugin("file")], options)))
    assert env["GOVFN_CHRONICLE"] == {
        "name": "GOVFN_CHRONICLE",
        "value": "/var/lib/govfn/chronicle.db",
    }
    assert "GOVFN_CHRONICLE_SPOOL" not in env


def test_size_limit_default_and_option(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    def ledger_volume(opts: ManifestOptions) -> Obj:
        volumes = service_of(render_all([make_plugin("sized")], opts))["spec"]["template"]["spec"]
        return {v["name"]: v for v in volumes["volumes"]}["ledger"]

    assert ledger_volume(options) == {"name": "ledger", "emptyDir": {"sizeLimit": "1Gi"}}
    assert ledger_volume(replace(options, var_size_limit="512Mi"))["emptyDir"] == {
        "sizeLimit": "512Mi"
    }
    spool_only = replace(options, database_secret="pg", var_size_limit="256Mi")
    assert ledger_volume(spool_only)["emptyDir"] == {"sizeLimit": "256Mi"}


def test_cli_flags() -> None:
    result = run("--database-secret", "pg:dsn", "--var-size-limit", "2Gi")
    assert result.exit_code == 0, result.output
    service = next(yaml.safe_load_all(result.output))
    assert env_of(service)["GOVFN_CHRONICLE"]["valueFrom"]["secretKeyRef"] == {
        "name": "pg",
        "key": "dsn",
    }
    assert service["spec"]["template"]["spec"]["volumes"][0]["emptyDir"] == {"sizeLimit": "2Gi"}
    assert schema_errors(service) == []


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "govfn.yaml"
    path.write_text("image: img\ndatabase-secret: pg\nvar-size-limit: 3Gi\n")
    options, _ = load_options({}, path)
    assert options.database_secret_ref() == ("pg", "uri")
    assert options.var_size_limit == "3Gi"
    flagged, _ = load_options({"var_size_limit": "1Gi", "database_secret": None}, path)
    assert flagged.var_size_limit == "1Gi" and flagged.database_secret == "pg"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--database-secret", "Bad_Name"], "database_secret: Secret name 'Bad_Name'"),
        (["--database-secret", ":uri"], "database_secret: Secret name ''"),
        (["--database-secret", "pg:"], "database_secret: Secret key ''"),
        (["--database-secret", "pg:a key"], "database_secret: Secret key 'a key'"),
        (
            ["--database-secret", "pg", "--env", "GOVFN_CHRONICLE=/tmp/x.db"],
            "env[GOVFN_CHRONICLE]: conflicts with --database-secret",
        ),
        (["--var-size-limit", "0"], "var_size_limit: '0' is not a positive quantity"),
        (["--var-size-limit", "-1Gi"], "var_size_limit: '-1Gi'"),
        (["--var-size-limit", "lots"], "var_size_limit: 'lots'"),
        (["--var-size-limit", "1GB"], "var_size_limit: '1GB'"),
        (["--var-size-limit", ""], "var_size_limit: ''"),
    ],
)
def test_cli_refusals_exit_2(flags: list[str], message: str) -> None:
    result = run(*flags)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and message in result.output


def test_config_size_limit_must_be_a_string(tmp_path: Path) -> None:
    path = tmp_path / "govfn.yaml"
    path.write_text("image: img\nvar-size-limit: 1024\n")
    with pytest.raises(ManifestError) as caught:
        load_options({}, path)
    assert caught.value.field == "var_size_limit"


def _entry(service: Obj) -> Obj:
    entry: Obj = container(service)["env"][0]
    assert entry["name"] == "GOVFN_CHRONICLE"
    return entry


def _volume(service: Obj) -> Obj:
    volume: Obj = service["spec"]["template"]["spec"]["volumes"][0]
    assert volume["name"] == "ledger"
    return volume


CASES: list[tuple[str, Callable[[Obj], object], str]] = [
    (
        "value and valueFrom",
        lambda s: _entry(s).update(value="/var/lib/govfn/x.db"),
        f"{C}.env[0].valueFrom: may not be set together with a value",
    ),
    (
        "two sources",
        lambda s: _entry(s)["valueFrom"].update(configMapKeyRef={"name": "c", "key": "k"}),
        f"{C}.env[0].valueFrom: exactly one of",
    ),
    (
        "no source",
        lambda s: _entry(s).update(valueFrom={}),
        f"{C}.env[0].valueFrom: exactly one of",
    ),
    (
        "fieldRef needs a feature flag",
        lambda s: _entry(s).update(valueFrom={"fieldRef": {"fieldPath": "metadata.name"}}),
        f"{C}.env[0].valueFrom.fieldRef: needs Knative's feature flag",
    ),
    (
        "secret without a name",
        lambda s: _entry(s)["valueFrom"]["secretKeyRef"].pop("name"),
        f"{C}.env[0].valueFrom.secretKeyRef.name: None is not a DNS-1123 subdomain",
    ),
    (
        "secret name",
        lambda s: _entry(s)["valueFrom"]["secretKeyRef"].update(name="PG"),
        f"{C}.env[0].valueFrom.secretKeyRef.name: 'PG'",
    ),
    (
        "secret key",
        lambda s: _entry(s)["valueFrom"]["secretKeyRef"].update(key="a/b"),
        f"{C}.env[0].valueFrom.secretKeyRef.key: 'a/b'",
    ),
    (
        "sizeLimit not a quantity",
        lambda s: _volume(s)["emptyDir"].update(sizeLimit="lots"),
        "spec.template.spec.volumes[0].emptyDir.sizeLimit: 'lots' is not a quantity",
    ),
    (
        "sizeLimit negative",
        lambda s: _volume(s)["emptyDir"].update(sizeLimit="-1Gi"),
        "spec.template.spec.volumes[0].emptyDir.sizeLimit: '-1Gi'",
    ),
    (
        "sizeLimit float",
        lambda s: _volume(s)["emptyDir"].update(sizeLimit=0.5),
        "spec.template.spec.volumes[0].emptyDir.sizeLimit: 0.5",
    ),
]
SCHEMA_BLIND = {"sizeLimit not a quantity", "sizeLimit negative", "sizeLimit float", "no source"}


@pytest.mark.parametrize(("case", "mutate", "expected"), CASES, ids=[c[0] for c in CASES])
def test_refusals_name_the_field(
    make_plugin: MakePlugin,
    options: ManifestOptions,
    case: str,
    mutate: Callable[[Obj], object],
    expected: str,
) -> None:
    service = service_of(render_all([make_plugin("pg")], replace(options, database_secret="pg")))
    broken = copy.deepcopy(service)
    validate_object(broken)  # valid before the change
    mutate(broken)
    if case in SCHEMA_BLIND:  # emptyDir preserves unknown fields; valueFrom lists no required
        assert schema_errors(broken) == [], case
    with pytest.raises(ManifestError) as caught:
        validate_object(broken)
    assert str(caught.value).startswith("Service ")
    assert expected in str(caught.value)


def test_config_map_key_is_accepted(make_plugin: MakePlugin, options: ManifestOptions) -> None:
    service = service_of(render_all([make_plugin("cm")], replace(options, database_secret="pg")))
    _entry(service)["valueFrom"] = {"configMapKeyRef": {"name": "settings", "key": "chronicle"}}
    validate_object(service)
    assert schema_errors(service) == []
