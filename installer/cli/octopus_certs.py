"""`octopus certificate renew` (what certbot's timer, or the cron entry without systemd,
runs) and `octopus certificate deployed` (certbot's deploy hook); registered on the octopus
app by `register`. Issuing is `octopus site add|set --https letsencrypt`."""

from __future__ import annotations

import re
from typing import Any

import typer

from installer.cli import options as opt
from installer.cli.app import application
from installer.config import load, resolve_path
from installer.data import load_profile
from installer.errors import CommandError
from installer.facts import Facts
from installer.octopus.model import Instance, SiteRecord
from installer.runner import SubprocessRunner
from installer.stack import acme
from installer.stack.release import Release
from installer.target import Target

certificate_app = typer.Typer(no_args_is_help=True, help="Let's Encrypt certificates: renewal.")
FORCE = typer.Option(False, "--force", help="Renew every certificate now, due or not.")


def _letsencrypt_dir() -> str:
    return str(load_profile("paths")["letsencrypt_dir"])


def served_certificate(target: Target, instance: Instance, site: SiteRecord) -> dict[str, Any]:
    """The issuer and expiry of the certificate the site's vhost names (None: no vhost or
    an unreadable certificate)."""
    info: dict[str, Any] = {"certificate_issuer": None, "certificate_expires": None}
    vhost = target.path(instance.vhost(site.domain))
    found = re.search(r"^\s*ssl_certificate\s+(\S+);", vhost.read_text(encoding="utf-8"),
                      re.M) if vhost.is_file() else None
    if found is None or not target.path(found.group(1)).is_file():
        return info
    try:
        read = acme.certificate_info(SubprocessRunner(), str(target.path(found.group(1))))
    except CommandError:
        return info
    return {"certificate_issuer": read["issuer"], "certificate_expires": read["expires"]}


@certificate_app.command("renew", cls=opt.takes("root", "config"))
def renew(ctx: typer.Context, force: bool = FORCE) -> None:
    """Renew the certificates that are due (certbot renew); a failure is an incident and
    the certificates in place keep serving."""
    this = application(ctx)
    config = load(resolve_path(this.config, this.root))
    this.say(acme.renew(SubprocessRunner(), Target(this.root), _letsencrypt_dir(),
                        force=force, ca_bundle=str(config["_LETSENCRYPT_CA"] or "")))


@certificate_app.command("deployed", cls=opt.takes("root"))
def deployed(ctx: typer.Context) -> None:
    """certbot's deploy hook: nginx -t, then reload Nginx."""
    this = application(ctx)
    runner, target = SubprocessRunner(), Target(this.root)
    facts = Facts(target, runner)
    service = Release.load(facts.distro.codename).service("nginx")
    this.say(acme.deployed(runner, target, facts.init_system, service))


def register(app: typer.Typer) -> None:
    app.add_typer(certificate_app, name="certificate")
