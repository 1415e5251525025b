"""The `govfn` command for the core: functions, invoke, chronicle verify/show/proof/export."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from govfn.chronicle import canonical_json, merkle
from govfn.cli.group import cli


@pytest.fixture
def runner(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliRunner:
    """GOVFN_CHRONICLE names a file in tmp_path, or (parametrized indirectly with
    "postgres") a fresh PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "postgres":
        monkeypatch.setenv("GOVFN_CHRONICLE", request.getfixturevalue("postgres_uri"))
        monkeypatch.setenv("GOVFN_CHRONICLE_SPOOL", str(tmp_path / "spool"))
        monkeypatch.setenv("GOVFN_IDEMPOTENCY", str(tmp_path / "idempotency.db"))
    else:
        monkeypatch.setenv("GOVFN_CHRONICLE", str(tmp_path / "chronicle.db"))
    monkeypatch.delenv("GOVFN_FUNCTIONS", raising=False)
    return CliRunner()


def test_functions_table_and_json(runner: CliRunner) -> None:
    table = runner.invoke(cli, ["functions"])
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split() == ["ID", "VERSION", "TRIGGERS", "EMITS"]
    assert lines[1].split() == ["billing", "1.0.0", "GSAP_CR_RECEIVED", "BILLABLE_EVENT"]
    described = json.loads(runner.invoke(cli, ["functions", "--json"]).output)
    assert [d["function_id"] for d in described] == ["billing", "echo"]


@pytest.mark.parametrize("runner", ["sqlite", "postgres"], indirect=True)
def test_invoke_records_and_chronicle_commands(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli, ["invoke", "billing", "--data", '{"customer_id": "acme"}', "--gsap-context", "g"]
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["success"] and outcome["data"]["subject"] == "acme"

    verify = runner.invoke(cli, ["chronicle", "verify"])
    assert verify.exit_code == 0 and verify.output.startswith("ok: 2 records")

    shown = json.loads(runner.invoke(cli, ["chronicle", "show", outcome["lineage_cid"]]).output)
    assert shown["type"] == "FUNCTION_COMPLETED" and shown["payload"]["success"] is True

    proof = json.loads(runner.invoke(cli, ["chronicle", "proof", outcome["lineage_cid"]]).output)
    exported = runner.invoke(cli, ["chronicle", "export"]).output.splitlines()
    lines = [json.loads(line) for line in exported]
    assert [line["type"] for line in lines] == ["FUNCTION_INVOKED", "FUNCTION_COMPLETED"]
    assert lines[1]["cid"] == outcome["lineage_cid"]
    leaf = merkle.leaf_hash(canonical_json(lines[1]["payload"]))
    path = [bytes.fromhex(node) for node in proof["audit_path"]]
    assert merkle.verify_inclusion(1, 2, leaf, path, bytes.fromhex(proof["root"]))


@pytest.mark.parametrize("runner", ["sqlite", "postgres"], indirect=True)
def test_failed_invocation_exits_non_zero(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["invoke", "billing", "--data", "{}"])
    assert result.exit_code == 1 and json.loads(result.output)["error_kind"] == "gsap_required"
    assert runner.invoke(cli, ["invoke", "echo", "--data", "{oops"]).exit_code == 2


def test_verify_names_the_tampered_record(runner: CliRunner, tmp_path: Path) -> None:
    for n in range(3):
        runner.invoke(cli, ["invoke", "echo", "--data", json.dumps({"n": n})])
    conn = sqlite3.connect(tmp_path / "chronicle.db", isolation_level=None)
    conn.execute("DROP TRIGGER records_no_update")
    conn.execute("UPDATE records SET body = CAST('{}' AS BLOB) WHERE seq = 3")
    conn.close()
    verify = runner.invoke(cli, ["chronicle", "verify"])
    assert verify.exit_code == 1 and "record 3" in verify.output


def test_missing_ledger_is_a_clear_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["chronicle", "verify"])
    assert result.exit_code == 1 and "no Chronicle ledger" in result.output


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    env = os.environ | {"GOVFN_CHRONICLE": str(tmp_path / "c.db")}
    out = subprocess.run(
        [sys.executable, "-m", "govfn", "invoke", "echo", "--data", "[1]"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"] == [1]


def test_serve_options_are_checked_before_anything_starts(runner: CliRunner) -> None:
    govfn = [sys.executable, "-m", "govfn", "serve"]
    bad_port = subprocess.run(
        [*govfn, "--port", "70000"], capture_output=True, text=True, timeout=60, check=False
    )
    assert bad_port.returncode == 2
    assert "--port: '70000' is not an integer 1..65535" in bad_port.stderr
    env = {**os.environ, "PORT": "http"}
    bad_env = subprocess.run(
        govfn, capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert bad_env.returncode == 2 and "(from env PORT or the option)" in bad_env.stderr
    missing = subprocess.run(
        [*govfn, "--functions", "no_such_govfn_module"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1
    assert "cannot import functions module 'no_such_govfn_module'" in missing.stderr


def test_serve_is_listed_and_reachable_through_the_group(runner: CliRunner) -> None:
    assert "serve" in runner.invoke(cli, ["--help"]).output
    shown = runner.invoke(cli, ["serve", "--help"])
    assert shown.exit_code == 0
    assert "usage: govfn serve" in shown.output and "--worker-class" in shown.output
