"""The CLI edge: the only place where typed errors become a message and an exit code."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
import typer

from installer.errors import EXIT_USAGE, BarracudaError, ChangesPending, Declined

# Answers rather than errors: the plan (or the question) said it all; only the code is left.
SILENT = (ChangesPending, Declined)

if TYPE_CHECKING:
    from installer.apply import Outcome


def _one_line(message: str, limit: int = 1000) -> str:
    """`message` on one line, cut at `limit` characters (Click echoes a value back whole)."""
    line = message.replace("\r", "\\r").replace("\n", "\\n")
    return line if len(line) <= limit else f"{line[:limit]}..."


def run_app(app: typer.Typer) -> None:
    """Run `app`; a usage error (an unknown option, a name starting with "-" taken for one)
    is one line and exit 2, like every other error, not Click's boxed help."""
    try:
        code = app(standalone_mode=False)
    except click.UsageError as error:
        where = f"{error.ctx.command_path}: " if error.ctx else ""
        hint = " (see --help)"
        if isinstance(error, click.NoSuchOption):
            hint = " (see --help; an argument that starts with - goes after --)"
        print(f"error: {where}{_one_line(error.format_message(), 200)}{hint}", file=sys.stderr,
              flush=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as error:
        print(f"error: {_one_line(error.format_message())}", file=sys.stderr, flush=True)
        sys.exit(error.exit_code)
    except click.Abort:
        print("Aborted.", file=sys.stderr, flush=True)
        sys.exit(1)
    except SILENT as answer:
        sys.exit(answer.exit_code)
    except BarracudaError as error:
        print(f"error: {_one_line(str(error))}", file=sys.stderr, flush=True)
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def exit_on_failures(outcome: Outcome | None) -> None:
    """A run whose summary counts failures exits 1 (the summary line said which)."""
    if outcome is not None and outcome.count("failed"):
        raise typer.Exit(1)
