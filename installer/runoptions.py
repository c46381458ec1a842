"""What the operator asked of a run: the CLI's shared options as the engine sees them.

Its own module, apart from installer.converge, so that the CLI's App can hold one without
importing the engine (commands such as `barracuda version` never load it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunOptions:
    """What the operator asked of a run (the CLI's shared options, without the console's)."""

    root: Path = Path("/")
    config: str | None = None
    yes: bool = False
    dry_run: bool = False
    check: bool = False
    json: bool = False
    keep_local_edits: bool = False
