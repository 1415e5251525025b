"""Loading functions: what loads when nothing is named, and what a failure says."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from govfn.app import create_app
from govfn.chronicle.client import MemoryChronicle
from govfn.errors import FunctionLoadError
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime

PROJECT = """
from govfn import governed_function


@governed_function("project-fn", trigger_events=["PROJECT_REQUESTED"])
def project_fn(event, context):
    return event
"""


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path; the modules imported from it are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def install(code: Path, module: str, source: str) -> None:
    """`module` and a dist-info naming it in the govfn.functions group, as pip installs."""
    (code / f"{module}.py").write_text(source, encoding="utf-8")
    dist = code / f"{module}_project-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}-project\n")
    (dist / "entry_points.txt").write_text(f"[govfn.functions]\n{module} = {module}\n")


def test_with_nothing_named_and_no_project_the_built_ins_load() -> None:
    ids = [plugin.function_id for plugin in load_functions((), FunctionRegistry())]
    assert ids == ["billing", "echo"]


def test_an_installed_project_stands_alone_unless_the_built_ins_are_asked_for(code: Path) -> None:
    install(code, "project_functions", PROJECT)
    alone = load_functions((), FunctionRegistry())
    assert [plugin.function_id for plugin in alone] == ["project-fn"]
    asked = load_functions(("govfn.functions",), FunctionRegistry())
    assert [plugin.function_id for plugin in asked] == ["billing", "echo", "project-fn"]


def test_a_module_that_fails_to_import_names_its_file_and_line(code: Path) -> None:
    (code / "broken_syntax.py").write_text("x = 1\ndef f(:\n    pass\n", encoding="utf-8")
    with pytest.raises(FunctionLoadError) as failed:
        load_functions(("broken_syntax",), FunctionRegistry())
    assert "broken_syntax.py, line 2: SyntaxError: " in str(failed.value)

    (code / "broken_name.py").write_text("x = 1\n\ny = undefined_name\n", encoding="utf-8")
    with pytest.raises(FunctionLoadError) as failed:
        load_functions(("broken_name",), FunctionRegistry())
    message = str(failed.value)
    assert "broken_name.py, line 3: NameError: name 'undefined_name' is not defined" in message


def test_an_installed_entry_point_that_fails_names_its_file_and_line(code: Path) -> None:
    install(code, "broken_project", "import json\n\nraise RuntimeError('no config')\n")
    with pytest.raises(FunctionLoadError) as failed:
        load_functions((), FunctionRegistry())
    assert "broken_project.py, line 3: RuntimeError: no config" in str(failed.value)


def test_a_module_that_is_not_there_gets_the_install_hint(code: Path) -> None:
    with pytest.raises(FunctionLoadError) as failed:
        load_functions(("not_installed_project.function",), FunctionRegistry())
    assert "ModuleNotFoundError" in str(failed.value)
    assert "pip install -e ." in str(failed.value)


def test_a_function_not_registered_gets_the_install_hint() -> None:
    registry = load_functions((), FunctionRegistry())
    runtime = FunctionRuntime(registry, MemoryChronicle())
    with pytest.raises(ValueError) as failed:
        create_app(runtime=runtime, function_id="hello-fn")
    message = str(failed.value)
    assert "'hello-fn' is not registered (registered: billing, echo)" in message
    assert "pip install -e ." in message and "--functions MODULE" in message
