"""`octopus site disable oN DOMAIN` and `octopus site enable oN DOMAIN` (registered on the
site app by `register`)."""

from __future__ import annotations

import typer

from installer.cli import options as opt
from installer.cli.app import application
from installer.cli.octopus_run import converge
from installer.octopus.names import check_instance_name
from installer.octopus.sites.state import site_state

NAME = typer.Argument(..., help="The instance, e.g. o1.")
DOMAIN = typer.Argument(..., help="The site's domain.")


def disable(ctx: typer.Context, name: str = NAME, domain: str = DOMAIN) -> None:
    """Take a site off the web: every name answers 503 "site disabled" (with Retry-After),
    its cron stops; its database, files and settings stay."""
    check_instance_name(name)
    converge(application(ctx), name, "site-disable", site_state(name, domain, True))


def enable(ctx: typer.Context, name: str = NAME, domain: str = DOMAIN) -> None:
    """Bring a disabled site back: its vhost and cron job again, serving what it served."""
    check_instance_name(name)
    converge(application(ctx), name, "site-enable", site_state(name, domain, False))


def register(site_app: typer.Typer) -> None:
    site_app.command("disable", cls=opt.takes(*opt.CONVERGE))(disable)
    site_app.command("enable", cls=opt.takes(*opt.CONVERGE))(enable)
