"""The options shared by the commands of both CLIs, declared once.

A command names the shared options it takes with `@app.command(cls=takes(...))`: they are
added to the command as it is built, so users type them after the subcommand as before
(`octopus site add o1 x --platform p --yes`), and their values go onto the App of the
invocation (installer/cli/app.py) before the command's function runs; the function itself
only declares its own arguments and options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import click
from typer.core import TyperCommand, TyperOption

from installer.cli.app import application


def _flag(decls: list[str], help: str) -> click.Option:
    return TyperOption(param_decls=decls, is_flag=True, default=False, help=help)


SHARED: dict[str, Callable[[], click.Option]] = {
    "yes": lambda: _flag(["--yes", "-y"], "Apply without asking."),
    "dry_run": lambda: _flag(["--dry-run"], "Print the plan with diffs; change nothing."),
    "check": lambda: _flag(["--check"], "Exit 5 when changes are pending; change nothing."),
    "json": lambda: _flag(["--json"], "Print the plan or results as JSON on stdout."),
    "root": lambda: TyperOption(
        param_decls=["--root"], type=click.Path(path_type=Path), default=Path("/"),
        metavar="DIR", show_default=True,
        help="Build the tree under this directory instead of /."),
    "config": lambda: TyperOption(
        param_decls=["--config", "-c"], type=str, default=None,
        help="Config file (default $BARRACUDA_CONFIG or /root/.barracuda.cnf)."),
    "verbose": lambda: TyperOption(
        param_decls=["--verbose", "-v"], type=int, count=True, default=0, show_default=True,
        help="Show the reasons behind each ok."),
    "quiet": lambda: _flag(["--quiet", "-q"], "Only the summary and errors."),
    "keep_local_edits": lambda: _flag(["--keep-local-edits"],
                                      "Leave managed files an operator edited alone."),
}

# Every command that converges (plans, then applies) takes all of them.
CONVERGE = ("yes", "dry_run", "check", "json", "root", "config", "verbose", "quiet",
            "keep_local_edits")


class SharedOptions(TyperCommand):
    """A Typer command with some of the SHARED options added after its own."""

    names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str | None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.params.extend(SHARED[option]() for option in self.names)

    def invoke(self, ctx: click.Context) -> Any:
        values = {option: ctx.params.pop(option) for option in self.names}
        application(ctx).set_options(values)
        return super().invoke(ctx)


def takes(*names: str) -> type[TyperCommand]:
    """The command class for a command taking these shared options (in this order)."""
    unknown = [name for name in names if name not in SHARED]
    if unknown:
        raise ValueError(f"not shared options: {unknown}")
    return type(f"Taking_{'_'.join(names)}", (SharedOptions,), {"names": names})
