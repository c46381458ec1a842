"""Subcommands imported when they are used, not when the CLI starts.

Most of a CLI's start-up time is importing what its commands use (the engine, the stack,
the agents): `barracuda version` needs none of it. A LazyGroup lists its lazy subcommands
by name with a one-line help, so `--help` shows them without importing them, and imports
one (its module, then the command) only when it is invoked or its own help is asked for.
tests/unit/test_startup.py checks that each listed help is the loaded command's own."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import click
import typer
from typer.core import TyperGroup


@dataclass(frozen=True)
class Lazy:
    """`target` is "module:attribute": a Typer app (the subcommand is that group) or a
    `register(app)` function adding the command to the app it is given."""

    target: str
    help: str


class LazyGroup(TyperGroup):
    """A Typer group whose `lazy` subcommands are imported on first use."""

    lazy: ClassVar[dict[str, Lazy]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in self.lazy:
            return command
        if self._listing:  # the group's own --help: the name and help are enough
            entry = self.lazy[cmd_name]
            return click.Command(cmd_name, help=entry.help, short_help=entry.help)
        command = load(cmd_name, self.lazy[cmd_name])
        self.add_command(command, cmd_name)
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def load(name: str, entry: Lazy) -> click.Command:
    """The click command `name` from its lazy entry."""
    module, _, attribute = entry.target.partition(":")
    target = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer(add_completion=False)  # as a part of the app, not an app of its own
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        register: Callable[[typer.Typer], None] = target
        register(holder)
    built = typer.main.get_command(holder)
    found = built.commands.get(name) if isinstance(built, click.Group) else built
    if found is None or found.name != name:
        raise LookupError(f"{entry.target} makes no command {name!r}")
    return found
