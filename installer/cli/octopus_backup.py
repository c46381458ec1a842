"""`octopus backup oN [DOMAIN]` and `octopus restore oN DOMAIN ARCHIVE` (registered on the
octopus app by `register`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from installer.agents.backup import agent
from installer.cli import options as opt
from installer.cli.app import App
from installer.config import load, resolve_path
from installer.octopus.backup import backup_instance
from installer.octopus.names import check_instance_name
from installer.octopus.sites.restore import restore_site
from installer.runner import SubprocessRunner
from installer.target import Target

NAME = typer.Argument(..., help="The instance, e.g. o1.")
DOMAIN = typer.Argument(None, help="Only this site (default: every site of the instance).")
SITE = typer.Argument(..., help="The site to bring back.")
ARCHIVE = typer.Argument(..., help="An archive of `octopus backup` or of a removal.")


def backup(
    name: str = NAME, domain: Optional[str] = DOMAIN, json: bool = opt.JSON,
    quiet: bool = opt.QUIET, root: Path = opt.ROOT, config: Optional[str] = opt.CONFIG,
) -> None:
    """Back up a site (or every site) of NAME: files, databases, records and the instance's
    configuration, as one archive in the instance's backups/."""
    check_instance_name(name)
    ctx = App(json=json, quiet=quiet, root=root, config=config)
    settings = agent.Settings.load(load(resolve_path(config, root)), root)
    with agent.backup_lock(settings, ctx.say):
        path = backup_instance(SubprocessRunner(), Target(root), name, domain)
    if json:
        ctx.emit_json({"archive": str(path), "size": path.stat().st_size})
        return
    ctx.say(f"{name}: {domain or 'every site'} backed up to {path} "
            f"({path.stat().st_size / (1 << 20):.1f} MiB)")


def restore(
    name: str = NAME, domain: str = SITE, archive: Path = ARCHIVE,
    yes: bool = opt.YES, dry_run: bool = opt.DRY_RUN, json: bool = opt.JSON,
    root: Path = opt.ROOT, config: Optional[str] = opt.CONFIG,
    verbose: int = opt.VERBOSE, quiet: bool = opt.QUIET,
) -> None:
    """Bring site DOMAIN back from ARCHIVE into instance NAME (its own or another one)."""
    from installer.cli.octopus import _app, _run  # the octopus app imports this module

    check_instance_name(name)
    ctx = _app(yes, dry_run, json, root, config, verbose, quiet)
    _run(ctx, name, "restore", restore_site(name, domain, str(archive)))


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
