"""The `govfn` command. Each subcommand lives in its own module and is imported only
when it runs, so `govfn serve` never pays for the manifest code and vice versa."""

from __future__ import annotations

import importlib
from typing import Any

import click

COMMANDS = {
    "functions": "govfn.cli.functions:functions",
    "invoke": "govfn.cli.functions:invoke",
    "chronicle": "govfn.cli.chronicle:chronicle",
    "serve": "govfn.cli.serve:serve",
    "manifests": "govfn.cli.manifests:manifests",
    "apply": "govfn.cli.manifests:apply",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="govfn")
def cli() -> None:
    """govfn: governed functions on Knative."""


def main(*args: Any) -> None:
    cli(*args)
