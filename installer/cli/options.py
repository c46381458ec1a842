"""Options shared by the commands of both CLIs, declared once."""

from __future__ import annotations

from pathlib import Path

import typer

YES = typer.Option(False, "--yes", "-y", help="Apply without asking.")
DRY_RUN = typer.Option(False, "--dry-run", help="Print the plan with diffs; change nothing.")
CHECK = typer.Option(False, "--check", help="Exit 5 when changes are pending; change nothing.")
JSON = typer.Option(False, "--json", help="Print the plan or results as JSON on stdout.")
ROOT = typer.Option(
    Path("/"), "--root", help="Build the tree under this directory instead of /.",
    file_okay=False,
)
CONFIG = typer.Option(
    None, "--config", "-c", help="Config file (default $BARRACUDA_CONFIG or /root/.barracuda.cnf).",
)
VERBOSE = typer.Option(0, "--verbose", "-v", count=True, help="Show the reasons behind each ok.")
QUIET = typer.Option(False, "--quiet", "-q", help="Only the summary and errors.")
KEEP_LOCAL_EDITS = typer.Option(
    False, "--keep-local-edits", help="Leave managed files an operator edited alone.",
)
