"""`octopus`: owns the hosting instances (o1, o2, ...)."""

from __future__ import annotations

from pathlib import Path

import typer

from installer.cli import options as opt
from installer.cli.app import App
from installer.cli.entry import run_app
from installer.target import Target

app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="Create, upgrade and inspect the hosting instances (o1, o2, ...).",
)

INSTANCES = "/data/disk"


@app.callback()
def _group() -> None:
    """Create, upgrade and inspect the hosting instances (o1, o2, ...)."""


@app.command("list")
def list_instances(json: bool = opt.JSON, root: Path = opt.ROOT) -> None:
    """The instances on this machine: each /data/disk/oN with its /root/.oN.octopus.cnf."""
    target = Target(root)
    base = target.path(INSTANCES)
    names = sorted(
        p.name for p in base.iterdir()
        if p.is_dir() and target.path(f"/root/.{p.name}.octopus.cnf").is_file()
    ) if base.is_dir() else []
    if json:
        App().emit_json({"instances": names})
        return
    print("\n".join(names) if names else "no instances")


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
