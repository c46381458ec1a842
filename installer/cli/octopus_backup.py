"""`octopus backup oN [DOMAIN]` and `octopus restore oN DOMAIN ARCHIVE` (registered on the
octopus app by `register`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from installer.agents.backup import agent
from installer.cli import options as opt
from installer.cli.app import application
from installer.cli.octopus_run import converge
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


def backup(ctx: typer.Context, name: str = NAME, domain: Optional[str] = DOMAIN) -> None:
    """Back up a site (or every site) of NAME: files, databases, records and the instance's
    configuration, as one archive in the instance's backups/."""
    check_instance_name(name)
    this = application(ctx)
    settings = agent.Settings.load(load(resolve_path(this.config, this.root)), this.root)
    with agent.backup_lock(settings, this.say):
        path = backup_instance(SubprocessRunner(), Target(this.root), name, domain)
    if this.json:
        this.emit_json({"archive": str(path), "size": path.stat().st_size})
        return
    this.say(f"{name}: {domain or 'every site'} backed up to {path} "
             f"({path.stat().st_size / (1 << 20):.1f} MiB)")


def restore(ctx: typer.Context, name: str = NAME, domain: str = SITE,
            archive: Path = ARCHIVE) -> None:
    """Bring site DOMAIN back from ARCHIVE into instance NAME (its own or another one)."""
    check_instance_name(name)
    converge(application(ctx), name, "restore", restore_site(name, domain, str(archive)))


def register(app: typer.Typer) -> None:
    app.command("backup", cls=opt.takes("json", "quiet", "root", "config"))(backup)
    app.command("restore", cls=opt.takes(*opt.CONVERGE))(restore)
