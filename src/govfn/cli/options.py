"""Options shared by the commands that load functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from govfn.errors import GovfnError
from govfn.registry import FunctionRegistry, load_functions
from govfn.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def functions_option(fn: F) -> F:
    return click.option(
        "--functions",
        "modules",
        multiple=True,
        metavar="MODULE",
        help="Module defining functions (repeatable; default: GOVFN_FUNCTIONS, else the "
        "installed projects' govfn.functions entry points, else the built-ins echo and billing).",
    )(fn)


def load_settings(modules: tuple[str, ...]) -> tuple[Settings, FunctionRegistry]:
    """Settings from the environment, with command-line modules loaded into a new registry."""
    settings = Settings.from_env().with_functions(modules)
    try:
        registry = load_functions(settings.functions, FunctionRegistry())
    except GovfnError as exc:
        raise click.ClickException(str(exc)) from exc
    return settings, registry
