"""`octopus site export oN DOMAIN --to FILE` and `octopus site import oN FILE` (registered
on the site sub-app by `register`): a site carried from one server to another as an
octopus archive."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from installer.cli import options as opt
from installer.cli.app import application
from installer.cli.octopus_run import converge
from installer.octopus.names import check_instance_name
from installer.octopus.sites.export import site_export
from installer.octopus.sites.import_ import site_import

NAME = typer.Argument(..., help="The instance, e.g. o1.")
DOMAIN = typer.Argument(..., help="The site's domain.")
TO = typer.Option(..., "--to", help="The archive to write (an absolute path ending in "
                  ".tar.zst).")
ARCHIVE = typer.Argument(..., help="An archive of `octopus site export` (or of `octopus "
                         "backup oN DOMAIN`).")
NEW_DOMAIN = typer.Option(None, "--domain", help="Import the site under this name (its "
                          "aliases stay behind).")
ON = typer.Option(None, "--platform", help="The platform of this instance to put it on "
                  "(default: the one of the same name; the same core either way).")


def export(ctx: typer.Context, name: str = NAME, domain: str = DOMAIN,
           to: str = TO) -> None:
    """Write site DOMAIN of NAME (files, database, records) into one verified archive; the
    site is only read."""
    check_instance_name(name)
    converge(application(ctx), name, "site-export",
             site_export(name, domain, str(Path(to).absolute())))


def import_(ctx: typer.Context, name: str = NAME, archive: Path = ARCHIVE,
            domain: Optional[str] = NEW_DOMAIN, platform: Optional[str] = ON) -> None:
    """Bring the site of ARCHIVE into NAME, on a platform of the same core, with a database
    and password of its own here and settings.php rendered for this server."""
    check_instance_name(name)
    converge(application(ctx), name, "site-import",
             site_import(name, str(archive), domain, platform))


def register(site_app: typer.Typer) -> None:
    site_app.command("export", cls=opt.takes(*opt.CONVERGE))(export)
    site_app.command("import", cls=opt.takes(*opt.CONVERGE))(import_)
