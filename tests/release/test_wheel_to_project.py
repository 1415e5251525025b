"""From the release build to a function author's project, with no checkout on the path.

What is checked, and where each package comes from:
- `python -m build` makes a wheel and an sdist from a copy of this checkout, and
  `twine check --strict` accepts both (what `make dist` runs);
- a fresh venv (`python -m venv`, with its own pip) installs govfn with
  `pip install --find-links DIST govfn`: govfn can only come from the wheel (it is on no
  index this machine reaches, which the test checks in pip's report), its dependencies come
  from the package index pip is configured with;
- `govfn init` from that venv writes a project; govfn's wheel is copied into its `wheels/`;
- a second fresh venv installs the project as its Dockerfile does
  (`pip install --find-links wheels .`, with the `test` extra): govfn from `wheels/`, the
  rest from the index;
- the project's own tests pass and `govfn serve` answers its event, `PYTHONPATH` empty and
  the working directory the project's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.http_server import REPO, start_server, stop_server

pytestmark = pytest.mark.slow

NAME = "hello-fn"
SOURCES = ("src", "pyproject.toml", "README.md", "CHANGELOG.md", "MANIFEST.in")


def clean_env(tmp: Path) -> dict[str, str]:
    """The environment less this repository's test settings, the ledger under `tmp`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GOVFN_", "PYTEST_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["GOVFN_CHRONICLE"] = str(tmp / "var" / "chronicle.db")
    return env


def run(
    command: list[str], cwd: Path, tmp: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=cwd, env=clean_env(tmp), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


def build_dist(tmp: Path) -> Path:
    """`make dist`'s commands, on a copy of the checkout (which gets no build/ or egg-info)."""
    source = tmp / "source"
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignored = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(REPO / name, source / name, ignore=ignored)
        else:
            shutil.copy(REPO / name, source / name)
    dist = tmp / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), "."], source, tmp)
    checked = run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
                  source, tmp)  # fmt: skip
    assert checked.stdout.count("PASSED") == 2, checked.stdout
    return dist


def fresh_venv(where: Path, tmp: Path) -> Path:
    run([sys.executable, "-m", "venv", str(where)], tmp, tmp)
    return where / "bin" / "python"


def installed_from(python: Path, cwd: Path, tmp: Path, *requirements: str) -> dict[str, str]:
    """`pip install --find-links ...`: the URL each installed distribution came from."""
    report = tmp / f"report-{python.parent.parent.name}.json"
    run([str(python), "-m", "pip", "install", "--quiet", "--report", str(report), *requirements],
        cwd, tmp, timeout=180)  # fmt: skip
    document = json.loads(report.read_text(encoding="utf-8"))
    return {
        item["metadata"]["name"].lower(): item["download_info"]["url"]
        for item in document["install"]
    }


@pytest.mark.timeout(300)  # about 50 s here; pip's downloads may be slower on a busy machine
def test_the_wheel_alone_makes_a_project_that_tests_and_serves(tmp_path: Path) -> None:
    dist = build_dist(tmp_path)
    wheel = next(dist.glob("govfn-*-py3-none-any.whl"))
    assert len(list(dist.glob("govfn-*.tar.gz"))) == 1

    # govfn from the wheel, in a venv of its own: the command works with no checkout.
    tools = fresh_venv(tmp_path / "tools", tmp_path)
    sources = installed_from(tools, tmp_path, tmp_path, "--find-links", str(dist), "govfn")
    assert sources["govfn"] == wheel.as_uri()
    assert not any(url.startswith(REPO.as_uri()) for url in sources.values()), sources
    govfn = str(tools.parent / "govfn")
    version = run([govfn, "--version"], tmp_path, tmp_path)
    assert wheel.name.split("-")[1] in version.stdout
    listed = run([govfn, "functions"], tmp_path, tmp_path)  # no project here: the built-ins
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["billing", "echo"]
    run([govfn, "init", NAME], tmp_path, tmp_path)
    project = tmp_path / NAME
    shutil.copy(wheel, project / "wheels" / wheel.name)

    # The project as its Dockerfile installs it, into another fresh venv.
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install --no-cache-dir --find-links wheels ." in dockerfile
    python = fresh_venv(tmp_path / "project-venv", tmp_path)
    sources = installed_from(python, project, tmp_path, "--find-links", "wheels", ".[test]")
    assert sources["govfn"] == (project / "wheels" / wheel.name).as_uri()
    assert NAME in sources
    # The test extra is slim: no Kubernetes client and what it pulls in.
    assert not {"kubernetes", "aiohttp", "pydantic"} & set(sources), sorted(sources)

    tested = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, tmp_path)
    assert "4 passed" in tested.stdout

    server = start_server(
        tmp_path, "--function", NAME, python=str(python), cwd=project, env={"PYTHONPATH": ""}
    )
    try:
        sent = run(
            [str(python.parent / "govfn"), "send", server.url + "/", "--type", "HELLO_FN_REQUESTED",
             "--id", "e-7", "--data", '{"name": "Ada"}'],
            project, tmp_path,
        )  # fmt: skip
        assert "type: HELLO_FN_REPLIED" in sent.stdout.splitlines()
        assert json.loads(sent.stdout.split("\n\n", 1)[1]) == {
            "greeting": "Hello, Ada!",
            "event_id": "e-7",
        }
    finally:
        stop_server(server)
