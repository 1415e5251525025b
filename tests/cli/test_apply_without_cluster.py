"""`govfn apply` on a machine with no cluster: `--dry-run` checks client-side and says so;
without it, the error points to `govfn manifests` and to the client-side dry run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def apply(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`govfn apply` with no kubeconfig (KUBECONFIG names a missing file, HOME is empty)
    and no service account: as on a laptop with no cluster set up."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GOVFN_", "KUBE"))}
    environ.update(HOME=str(tmp_path), KUBECONFIG=str(tmp_path / "no-kubeconfig"))
    return subprocess.run(
        [sys.executable, "-m", "govfn", "apply", "--functions", "govfn.functions",
         "--image", "registry.example/fns:1", *args],
        capture_output=True, text=True, timeout=60, env=environ, cwd=tmp_path,
    )  # fmt: skip


def test_dry_run_without_a_cluster_checks_client_side(tmp_path: Path) -> None:
    done = apply(tmp_path, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "No cluster to dry-run against" in done.stderr
    assert "Service host/port is not set" not in done.stdout
    assert "Checked client-side" in done.stdout
    for name in ("Service echo", "Service billing", "Trigger echo-echo-requested"):
        assert f"  {name} (checked, client side)" in done.stdout
    assert "`govfn manifests` prints these objects" in done.stdout


def test_dry_run_without_a_cluster_still_refuses_what_knative_would(tmp_path: Path) -> None:
    done = apply(tmp_path, "--dry-run", "--max-scale", "-1")
    assert done.returncode == 2
    assert "max-scale" in done.stderr


@pytest.mark.parametrize("args", [(), ("--wait",)])
def test_apply_without_a_cluster_points_to_manifests(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = apply(tmp_path, *args)
    assert done.returncode == 1
    assert "`govfn manifests` renders the objects without a cluster" in done.stderr
    assert "`govfn apply --dry-run` checks them client-side" in done.stderr
