"""The `govfn` click group. Each subcommand lives in its own module and is imported only
when it runs, so `govfn manifests` never pays for the server code and vice versa."""

from __future__ import annotations

import importlib

import click

COMMANDS = {
    "functions": "govfn.cli.functions:functions",
    "init": "govfn.cli.init:init",
    "invoke": "govfn.cli.functions:invoke",
    "chronicle": "govfn.cli.chronicle:chronicle",
    "serve": "govfn.cli.group:serve",
    "send": "govfn.cli.send:send",
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


@click.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def serve(arguments: tuple[str, ...]) -> None:
    """Serve every function's CloudEvents receiver and the management API."""
    from govfn.cli.serve import main

    main(arguments)
