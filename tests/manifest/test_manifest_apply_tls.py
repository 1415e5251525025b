"""`govfn apply` over HTTPS with a kubeconfig that turns TLS verification off: one line says
so, not urllib3's InsecureRequestWarning once per request (the real `govfn` process)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from govfn_manifest_apiserver import ApiServer, ApiServerState

IMAGE = ["--image", "registry.example/govfn:1.0.0", "--functions", "govfn.functions"]


@pytest.fixture
def tls_apiserver(tmp_path: Path) -> Iterator[ApiServer]:
    certificate, key = tmp_path / "server.crt", tmp_path / "server.key"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [*openssl, *subject, "-keyout", str(key), "-out", str(certificate)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    server = ApiServer(ApiServerState(), tls=(certificate, key)).start()
    try:
        yield server
    finally:
        server.stop()


def _apply(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": ""}  # Python's own default warning filters
    command = [sys.executable, "-m", "govfn", "apply", *IMAGE, "--kubeconfig", str(kubeconfig)]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )


def _kubeconfig(server: ApiServer, path: Path, insecure: bool) -> Path:
    server.write_kubeconfig(path)
    config = yaml.safe_load(path.read_text())
    config["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = insecure
    path.write_text(yaml.safe_dump(config))
    return path


def test_one_line_when_tls_verification_is_off(tls_apiserver: ApiServer, tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tls_apiserver, tmp_path / "kubeconfig", insecure=True)
    result = _apply(kubeconfig, "--prune")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(" applied\n") == 6
    assert result.stderr.splitlines() == [
        "Warning: TLS verification is off (insecure-skip-tls-verify in the kubeconfig): "
        "the API server's certificate is not checked"
    ]
    requests = len(tls_apiserver.state.requests)
    assert requests >= 6 + 3  # discovery, six applies, three prune lists: all quiet


def test_verification_on_refuses_the_unknown_certificate(
    tls_apiserver: ApiServer, tmp_path: Path
) -> None:
    """The same server with verification on: the self-signed certificate is refused, so the
    quiet run above really did go without verification."""
    kubeconfig = _kubeconfig(tls_apiserver, tmp_path / "kubeconfig", insecure=False)
    result = _apply(kubeconfig)
    assert result.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr and "Warning: TLS" not in result.stderr
