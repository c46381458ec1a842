"""The CLI edge: the only place where typed errors become a message and an exit code."""

from __future__ import annotations

import sys

import typer

from installer.apply import Outcome
from installer.errors import BarracudaError, ChangesPending, Declined

# Answers rather than errors: the plan (or the question) said it all; only the code is left.
SILENT = (ChangesPending, Declined)


def run_app(app: typer.Typer) -> None:
    try:
        app(standalone_mode=True)
    except SILENT as answer:
        sys.exit(answer.exit_code)
    except BarracudaError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(error.exit_code)


def exit_on_failures(outcome: Outcome | None) -> None:
    """A run whose summary counts failures exits 1 (the summary line said which)."""
    if outcome is not None and outcome.count("failed"):
        raise typer.Exit(1)
