"""`govfn init`: the generated project installs into a fresh venv, passes its own tests,
serves an event with `govfn serve` and renders its manifests, with no file edited."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from govfn.cli.group import cli

from support.http_server import REPO, start_server, stop_server

NAME = "hello-fn"
GENERATED = {
    ".dockerignore",
    ".gitignore",
    "Dockerfile",
    "README.md",
    "govfn.yaml",
    "pyproject.toml",
    "src/hello_fn/__init__.py",
    "src/hello_fn/function.py",
    "tests/test_events.py",
    "tests/test_function.py",
    "wheels/README.md",
}
# What building and testing the project leaves beside its files (all in its .gitignore).
ARTIFACTS = ("build", ".egg-info", "__pycache__", ".pytest_cache")


@dataclass
class Project:
    root: Path
    python: Path  # the fresh venv's interpreter
    files: dict[str, bytes]  # as `govfn init` wrote them
    tmp: Path

    def run(
        self, *args: str, cwd: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args],
            cwd=cwd or self.root,
            env=clean_env(self.tmp),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def clean_env(tmp: Path) -> dict[str, str]:
    """The environment without this repository's test settings, ledger under `tmp`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GOVFN_", "PYTEST_", "PYTHON"))
    }
    env["GOVFN_CHRONICLE"] = str(tmp / "var" / "chronicle.db")
    return env


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not any(part.endswith(ARTIFACTS) for part in path.parts)
    }


def fresh_venv(where: Path) -> Path:
    """A new venv that sees this repository's installed packages (pytest, setuptools and
    govfn's dependencies) through a .pth file naming their directories, so installing into
    it needs no network. The .pth files there are not read, so the checkout's editable
    govfn is not importable: govfn comes from the wheel installed next."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=60
    )
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    ours = [path for path in site.getsitepackages() if Path(path).is_dir()]
    (Path(purelib) / "_repo_packages.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    return python


def govfn_wheel(tmp: Path) -> Path:
    """A wheel of this checkout, built from a copy (the checkout gets no build/ or egg-info)."""
    source = tmp / "govfn-source"
    shutil.copytree(
        REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "-w", str(tmp / "wheels"), str(source)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    return next((tmp / "wheels").glob("govfn-*.whl"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """`govfn init` run by govfn installed from a wheel of this checkout into a fresh venv,
    and the generated project installed into that venv."""
    tmp = tmp_path_factory.mktemp("init")
    root = tmp / NAME
    python = fresh_venv(tmp / "venv")
    made = Project(root, python, {}, tmp)
    wheel = govfn_wheel(tmp)
    installed = made.run(
        "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--ignore-installed",
        str(wheel), cwd=tmp,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    created = made.run("-m", "govfn", "init", NAME, "--dir", str(root), cwd=tmp)
    assert created.returncode == 0, created.stderr
    made.files = snapshot(root)
    installed = made.run(
        "-m", "pip", "install", "--quiet", "--no-index", "--no-build-isolation", ".[test]"
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    yield made
    assert snapshot(root) == made.files, "something edited the generated project"


def test_govfn_comes_from_the_wheel_in_the_fresh_venv(project: Project) -> None:
    where = project.run("-c", "import govfn, sys; print(govfn.__file__); print(sys.prefix)")
    module, prefix = where.stdout.split()
    assert Path(module).is_relative_to(prefix), where.stdout
    assert Path(prefix) == project.python.parent.parent


def test_init_writes_the_project_files(project: Project) -> None:
    assert set(project.files) == GENERATED
    pyproject = project.files["pyproject.toml"].decode()
    assert 'dependencies = ["govfn"]  #' in pyproject
    assert '[project.entry-points."govfn.functions"]\nhello-fn = "hello_fn.function"' in pyproject


def test_the_dockerfile_builds_the_project_on_a_pinned_base_as_a_non_root_user(
    project: Project,
) -> None:
    lines = project.files["Dockerfile"].decode().splitlines()
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert len(bases) == 2
    for base in bases:
        image, _, tag = base.partition(":")
        assert image == "python" and tag.count(".") == 2, base  # an exact release, not 3.11
    assert "COPY src ./src" in lines
    assert any("pip install --no-cache-dir --find-links wheels ." in line for line in lines)
    assert "COPY wheels ./wheels" in lines  # govfn from a wheel put there, before the index
    assert any("python -m compileall" in line for line in lines)
    user = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user == ["10001:10001"]
    assert lines[-1] == f'CMD ["serve", "--function", "{NAME}"]'


def test_git_ignores_signing_keys_and_wheels(project: Project, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / ".gitignore").write_bytes(project.files[".gitignore"])
    subprocess.run(["git", "init", "-q", str(copy)], check=True, timeout=30)
    paths = ["keys/chronicle.key", "keys/signer", "wheels/govfn-0.1.0-py3-none-any.whl"]
    for path in [*paths, "wheels/README.md", "src/hello_fn/function.py"]:
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        (copy / path).write_text("x")
    checked = subprocess.run(
        ["git", "check-ignore", *paths, "wheels/README.md", "src/hello_fn/function.py"],
        cwd=copy, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert checked.stdout.split() == paths
    assert {"keys", "*.key"} <= set(project.files[".dockerignore"].decode().splitlines())


def test_the_test_extra_is_slim(project: Project) -> None:
    pyproject = project.files["pyproject.toml"].decode()
    assert 'test = ["pytest>=8", "govfn[send]"]' in pyproject  # no Kubernetes client
    assert 'deploy = ["govfn[apply]"]' in pyproject


def test_the_installed_project_is_found_through_its_entry_point(project: Project) -> None:
    listed = project.run("-m", "govfn", "functions", "--functions", "hello_fn.function", "--json")
    assert listed.returncode == 0, listed.stderr
    descriptors = json.loads(listed.stdout)
    assert [d["function_id"] for d in descriptors] == [NAME]
    assert descriptors[0]["trigger_events"] == ["HELLO_FN_REQUESTED"]
    alone = project.run("-m", "govfn", "functions", "--json")  # the built-ins stay out
    assert alone.returncode == 0, alone.stderr
    assert [d["function_id"] for d in json.loads(alone.stdout)] == [NAME]
    found = project.run(
        "-c",
        "from govfn.entry_points import entry_points; "
        "print([e.value for e in entry_points('govfn.functions')])",
    )
    assert found.stdout.strip() == "['hello_fn.function']", found.stderr


def test_its_own_tests_pass(project: Project) -> None:
    tested = project.run("-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "4 passed" in tested.stdout


def test_its_python_passes_ruff(project: Project) -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated",
         "--select", "E,F,W,B,UP,SIM", "--line-length", "100", "."],
        cwd=project.root, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout


def test_govfn_serve_answers_its_event(project: Project) -> None:
    server = start_server(
        project.tmp,
        "--function",
        NAME,
        python=str(project.python),
        cwd=project.root,
        env={"PYTHONPATH": ""},
    )
    try:  # the README's third command
        sent = project.run(
            "-m", "govfn", "send", server.url + "/",
            "--type", "HELLO_FN_REQUESTED", "--id", "e-42", "--data", '{"name": "Ada"}',
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "type: HELLO_FN_REPLIED" in sent.stdout.splitlines()
        data = json.loads(sent.stdout.split("\n\n", 1)[1])
        assert data == {"greeting": "Hello, Ada!", "event_id": "e-42"}
    finally:
        stop_server(server)


def test_govfn_manifests_renders_the_function_from_govfn_yaml(project: Project) -> None:
    rendered = project.run("-m", "govfn", "manifests")
    assert rendered.returncode == 0, rendered.stderr
    objects = list(yaml.safe_load_all(rendered.stdout))
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert [kind for kind, _ in kinds] == ["Service", "SinkBinding", "Trigger"]
    service = next(o for o in objects if o["kind"] == "Service")
    container = service["spec"]["template"]["spec"]["containers"][0]
    assert service["metadata"]["name"] == NAME
    assert container["image"] == "registry.example/hello-fn:0.1.0"
    assert container["args"] == [
        *("serve", "--function", NAME, "--functions", "hello_fn.function", "--single-process")
    ]
    trigger = next(o for o in objects if o["kind"] == "Trigger")
    assert trigger["spec"]["filter"]["attributes"]["type"] == "HELLO_FN_REQUESTED"
    assert trigger["spec"]["delivery"]["retry"] == 3
    binding = next(o for o in objects if o["kind"] == "SinkBinding")
    assert binding["spec"]["subject"]["name"] == NAME
    assert binding["spec"]["sink"]["ref"]["name"] == "default"  # the Triggers' broker


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Hello", "not a DNS-1123 label"),
        ("hello_fn", "not a DNS-1123 label"),
        ("-hello", "not a DNS-1123 label"),
        ("a" * 64, "longer than 63"),
        ("9lives", "starts with a digit"),
        ("json", "shadows 'json'"),
        ("echo", "built into govfn"),
    ],
)
def test_a_name_that_cannot_name_a_function_is_refused(
    tmp_path: Path, name: str, problem: str
) -> None:
    result = CliRunner().invoke(cli, ["init", "--dir", str(tmp_path / "p"), "--", name])
    assert result.exit_code == 2
    assert problem in result.output
    assert not (tmp_path / "p").exists()


def test_a_non_empty_directory_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["init", NAME, "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "exists and is not an empty directory" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_empty_directory_is_used(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", NAME, "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert set(snapshot(tmp_path)) == GENERATED
