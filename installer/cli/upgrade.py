"""`barracuda up-stable`, `up-head` (optionally `system`) and `rollback`: the command line
of the upgrade workflows in installer/upgrade/workflow.py."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from installer.cli import options as opt
from installer.cli.app import application
from installer.cli.entry import exit_on_failures
from installer.upgrade import workflow

MODE_ARG = typer.Argument(None, help="system: operating-system packages only (BOA's mode).")
RUN = typer.Option(None, "--run", metavar="NAME",
                   help="The run to undo (a folder name under /var/backups/barracuda/"
                        "checkpoints); default: the newest run.")
FORCE = typer.Option(False, "--force", help="Allow moving from head back to stable, or to an "
                                            "older barracuda.")


def register(app: typer.Typer) -> None:
    """Add up-stable, up-head and rollback to the barracuda app."""

    def make_up(channel: str) -> None:
        def command(ctx: typer.Context, mode: Optional[str] = MODE_ARG,
                    force: bool = FORCE) -> None:
            this = application(ctx)
            exit_on_failures(workflow.up(this.options, this, channel, mode, force,
                                         argv=sys.argv[1:]))

        command.__doc__ = (f"Upgrade to the {channel} channel: the tool, the stack's packages "
                           "and its configuration (`system`: operating-system packages only).")
        app.command(f"up-{channel}", cls=opt.takes(*opt.CONVERGE))(command)

    make_up("stable")
    make_up("head")

    @app.command("rollback", cls=opt.takes("yes", "dry_run", "root", "config", "quiet"))
    def rollback_command(ctx: typer.Context, run: Optional[str] = RUN) -> None:
        """Undo the last run that changed something (its configuration snapshot and tool
        environment), after listing what that restores; a run already rolled back is
        refused."""
        this = application(ctx)
        workflow.rollback(this.options, this, run)
