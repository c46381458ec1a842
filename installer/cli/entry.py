"""The CLI edge: the only place where typed errors become a message and an exit code."""

from __future__ import annotations

import sys

import typer

from installer.errors import BarracudaError


def run_app(app: typer.Typer) -> None:
    try:
        app(standalone_mode=True)
    except BarracudaError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(error.exit_code)
