"""`govfn init NAME`: a new function project that works as generated.

The files come from the templates in `govfn/templates/function/` (package data), with
`{{name}}`-style placeholders filled in; nothing else is rewritten.
"""

from __future__ import annotations

import keyword
import re
import sys
from importlib.resources import files
from pathlib import Path

import click

from govfn.function import validate_function_id

REFUSED = 2
TEMPLATES = "templates/function"
# Pinned to an exact release (the generated Dockerfile says how to pin its digest too).
BASE_IMAGE = "python:3.11.11-slim-bookworm"
BUILT_IN_FUNCTIONS = ("billing", "echo")

# template file -> path in the project ({package} is the Python package's name)
LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "govfn.yaml.tmpl": "govfn.yaml",
    "Dockerfile.tmpl": "Dockerfile",
    "dockerignore.tmpl": ".dockerignore",
    "gitignore.tmpl": ".gitignore",
    "wheels_readme.md.tmpl": "wheels/README.md",
    "init.py.tmpl": "src/{package}/__init__.py",
    "function.py.tmpl": "src/{package}/function.py",
    "test_function.py.tmpl": "tests/test_function.py",
    "test_events.py.tmpl": "tests/test_events.py",
}

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def placeholders(name: str) -> dict[str, str]:
    """What the templates' `{{key}}`s become for a function called `name`."""
    package = name.replace("-", "_")
    stem = package.upper()
    return {
        "name": name,
        "package": package,
        "handler": package,
        "trigger": f"{stem}_REQUESTED",
        "reply": f"{stem}_REPLIED",
        "description": f"The {name} governed function",
        "base_image": BASE_IMAGE,
    }


def render(template: str, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        return values[match.group(1)]  # a KeyError here is a template defect

    return _PLACEHOLDER.sub(fill, template)


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a function project, or None."""
    try:
        validate_function_id(name)
    except ValueError as exc:
        return str(exc).replace("function_id", "NAME", 1)
    package = name.replace("-", "_")
    if package[0].isdigit():
        return f"NAME {name!r} starts with a digit, so it cannot name a Python package"
    if keyword.iskeyword(package) or package in sys.stdlib_module_names or package == "govfn":
        return f"NAME {name!r} would give a Python package that shadows {package!r}"
    if name in BUILT_IN_FUNCTIONS:
        return f"NAME {name!r} is a function built into govfn"
    return None


def refuse(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(REFUSED)


@click.command()
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to create the project [default: ./NAME]; must not exist or be empty.",
)
def init(name: str, directory: Path | None) -> None:
    """Create the function project NAME (a DNS-1123 label): code, tests, Dockerfile, govfn.yaml."""
    problem = name_problem(name)
    if problem is not None:
        refuse(problem)
    target = directory if directory is not None else Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        refuse(f"--dir {target} exists and is not an empty directory")
    values = placeholders(name)
    templates = files("govfn").joinpath(TEMPLATES)
    for template, destination in LAYOUT.items():
        path = target / destination.format(package=values["package"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(templates.joinpath(template).read_text("utf-8"), values), "utf-8")
    click.echo(f"Created {name} in {target}/. Next:", err=True)
    click.echo(f"  cd {target} && pip install --find-links wheels -e '.[test]' && pytest", err=True)
    click.echo("  (until govfn is on PyPI, put its wheel in wheels/ first)", err=True)
