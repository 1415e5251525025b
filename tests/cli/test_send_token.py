"""`govfn send --token / --token-file` against a real receiver on loopback that checks the
bearer token (the sink double, as a sink verifying Knative's OIDC tokens would)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.sink_double import SinkDouble

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def govfn_send(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govfn", "send", *args, "--type", "T", "--data", "{}"],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def test_the_token_is_sent_as_a_bearer(sink: SinkDouble, tmp_path: Path) -> None:
    sink.token = TOKEN
    refused = govfn_send(sink.url)
    assert refused.returncode == 1 and refused.stdout.startswith("HTTP 401")
    given = govfn_send(sink.url, "--token", TOKEN)
    assert given.returncode == 0 and given.stdout.startswith("HTTP 202"), given.stderr
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")  # as `kubectl create token` writes it
    from_file = govfn_send(sink.url, "--token-file", str(token_file))
    assert from_file.returncode == 0, from_file.stderr
    from_stdin = govfn_send(sink.url, "--token-file", "-", stdin=TOKEN)
    assert from_stdin.returncode == 0, from_stdin.stderr
    repeated = govfn_send(sink.url, "--token", TOKEN, "--repeat", "3")
    assert repeated.returncode == 0, repeated.stdout + repeated.stderr
    assert [e["authorization"] for e in sink.received] == [f"Bearer {TOKEN}"] * 6
    assert sink.unauthorized == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token", "a\r\nX-Evil: 1"], "not a bearer token"),
        (["--token", "x", "--token-file", "/dev/null"], "give --token or --token-file, not both"),
        (["--token-file", "/nonexistent/token"], "cannot read /nonexistent/token"),
    ],
)
def test_bad_tokens_are_refused_before_sending(
    sink: SinkDouble, args: list[str], message: str
) -> None:
    refused = govfn_send(sink.url, *args)
    assert refused.returncode == 2 and message in refused.stderr
    assert sink.received == [] and sink.unauthorized == 0
