"""`govfn send` against a real `govfn serve` on loopback: the SDK-encoded event reaches the
function with its attributes, the reply event is printed, bad input exits 2, an unreachable
server is one line, and `--repeat` counts every answer."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from govfn.cli.group import cli

from support.http_server import Server, free_port


def govfn_send(*args: str, stderr: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govfn", "send", *args],
        capture_output=stderr is None,
        stdout=subprocess.PIPE if stderr is not None else None,
        stderr=stderr,
        text=True,
        timeout=60,
    )


def printed_data(stdout: str) -> object:
    """The JSON data `govfn send` prints after the attributes and a blank line."""
    return json.loads(stdout.split("\n\n", 1)[1])


def printed_attributes(stdout: str) -> dict[str, str]:
    head = stdout.split("\n\n", 1)[0].splitlines()[1:]
    return dict(line.split(": ", 1) for line in head)


def echo_invocations(server: Server) -> int:
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = re.search(r'govfn_invocations_total\{function="echo",outcome="success"\} (\d+)', text)
    return int(found.group(1)) if found else 0


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_the_event_reaches_the_function_and_the_reply_is_printed(server: Server, mode: str) -> None:
    sent = govfn_send(
        server.url + "/functions/whereami/events",
        "--type", "WHEREAMI_REQUESTED",
        "--source", "/tests/send",
        "--subject", "order-7",
        "--id", f"send-{mode}",
        "--data", '{"n": 1}',
        "--gsap-context", "gsap-42",
        "--extension", "chroniclesessionid=sess-9",
        "--mode", mode,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("HTTP 200 OK\n")
    attributes = printed_attributes(sent.stdout)
    assert attributes["type"] == "WHEREAMI_REPLIED"
    assert attributes["source"] == "/govfn/functions/whereami"
    assert attributes["gsapcontextid"] == "gsap-42"
    assert attributes["lineagecid"].startswith("b")
    context = printed_data(sent.stdout)["context"]  # type: ignore[index]
    assert context["event_id"] == f"send-{mode}"
    assert context["event_source"] == "/tests/send"
    assert context["event_subject"] == "order-7"
    assert context["gsap_context_id"] == "gsap-42"
    assert context["chronicle_session_id"] == "sess-9"


def test_data_comes_from_a_file(server: Server, tmp_path: Path) -> None:
    data = tmp_path / "event.json"
    data.write_text(json.dumps({"items": [1, 2, 3], "note": "é"}), encoding="utf-8")
    sent = govfn_send(server.url + "/", "--type", "ECHO_REQUESTED", "--data-file", str(data))
    assert sent.returncode == 0, sent.stderr
    assert printed_attributes(sent.stdout)["type"] == "ECHO_REPLIED"
    assert printed_data(sent.stdout) == {"items": [1, 2, 3], "note": "é"}


def test_a_refused_event_prints_the_problem_and_exits_1(server: Server) -> None:
    sent = govfn_send(server.url + "/", "--type", "NOBODY_HANDLES_THIS", "--data", "{}")
    assert sent.returncode == 1
    assert sent.stdout.startswith("HTTP 400 Bad Request\n")
    problem = json.loads(sent.stdout.split("\n", 1)[1])
    assert "NOBODY_HANDLES_THIS" in problem["detail"]


def test_an_unreachable_server_is_one_line_and_exit_1() -> None:
    sent = govfn_send(f"http://127.0.0.1:{free_port()}/", "--type", "ECHO_REQUESTED")
    assert sent.returncode == 1
    assert sent.stdout == ""
    assert sent.stderr.count("\n") == 1
    assert sent.stderr.startswith("Error: cannot reach http://127.0.0.1:")
    assert "refused" in sent.stderr.lower()


def test_repeat_sends_each_event_once_and_summarises(server: Server) -> None:
    before = echo_invocations(server)
    sent = govfn_send(
        server.url + "/", "--type", "ECHO_REQUESTED", "--data", '{"x": 1}',
        "--repeat", "40", "--concurrency", "3",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert echo_invocations(server) == before + 40
    lines = sent.stdout.splitlines()
    assert lines[0].startswith("40 events on 3 connection(s) in ")
    assert lines[1] == "statuses: 200: 40"
    assert re.fullmatch(r"throughput: [\d.]+ req/s", lines[2])
    quantiles = re.fullmatch(
        r"latency ms: p50 ([\d.]+)  p90 ([\d.]+)  p99 ([\d.]+)  max ([\d.]+)", lines[3]
    )
    assert quantiles is not None
    p50, p90, p99, top = map(float, quantiles.groups())
    assert 0 < p50 <= p90 <= p99 <= top
    assert sent.stderr == ""  # no progress bar when stderr is not a terminal


def test_repeat_counts_failures_and_exits_1(server: Server) -> None:
    sent = govfn_send(
        server.url + "/", "--type", "NOBODY_HANDLES_THIS", "--repeat", "5", "--concurrency", "2"
    )
    assert sent.returncode == 1
    assert "statuses: 400: 5" in sent.stdout
    assert "first failure:" in sent.stderr


def test_the_progress_bar_goes_to_a_terminal(server: Server) -> None:
    controller, terminal = os.openpty()
    try:
        sent = govfn_send(
            server.url + "/",
            "--type",
            "ECHO_REQUESTED",
            "--data",
            "[1]",
            "--repeat",
            "10",
            stderr=terminal,
        )
        os.close(terminal)
        terminal = -1
        shown = b""
        for _ in range(100):  # what the child wrote is buffered in the pty
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: nothing more
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if terminal != -1:
            os.close(terminal)
        os.close(controller)
    assert sent.returncode == 0
    assert b"sending" in shown
    assert "statuses: 200: 10" in sent.stdout


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--data", "{not json"], "--data: not JSON"),
        (["--extension", "Bad-Name=1"], "'Bad-Name' is not a CloudEvents attribute name"),
        (["--extension", "waytoolongforanattributename=1"], "is not a CloudEvents attribute"),
        (["--extension", "novalue"], "'novalue' is not NAME=VALUE"),
        (["--extension", "subject=x"], "'subject' is a core attribute"),
        (["--data", "1", "--data-file", "x.json"], "not both"),
        (["--mode", "batch"], "--mode"),
        (["--repeat", "0"], "--repeat"),
        (["--traceparent", "00-abc-def-01"], "--traceparent: '00-abc-def-01' is not"),
    ],
)
def test_bad_input_exits_2_naming_it(arguments: list[str], named: str) -> None:
    result = CliRunner().invoke(
        cli, ["send", "http://127.0.0.1:9/", "--type", "ECHO_REQUESTED", *arguments]
    )
    assert result.exit_code == 2, result.output
    assert named in result.output


def test_an_unreadable_data_file_or_bad_url_exits_2(tmp_path: Path) -> None:
    missing = CliRunner().invoke(
        cli, ["send", "http://127.0.0.1:9/", "--type", "T", "--data-file", str(tmp_path / "no")]
    )
    assert missing.exit_code == 2
    assert "--data-file: cannot read" in missing.output
    bad_file = tmp_path / "bad.json"
    bad_file.write_text("{")
    broken = CliRunner().invoke(
        cli, ["send", "http://127.0.0.1:9/", "--type", "T", "--data-file", str(bad_file)]
    )
    assert broken.exit_code == 2
    assert "--data-file: not JSON" in broken.output
    url = CliRunner().invoke(cli, ["send", "ftp://127.0.0.1/", "--type", "T"])
    assert url.exit_code == 2
    assert "is not an http(s) URL" in url.output
