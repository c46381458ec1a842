"""`octopus`: owns the hosting instances (o1, o2, ...), their platforms and their sites.

Every changing command is a converge through the same engine as `barracuda install` (plan,
lock, checkpoint, validation, rollback, run log, summary line)."""

from __future__ import annotations

import os
import pwd
import time
from pathlib import Path
from typing import Any, Optional

import typer

from installer.cli import (
    octopus_access,
    octopus_backup,
    octopus_certs,
    octopus_ftp,
    octopus_lifecycle,
    octopus_move,
    octopus_state,
)
from installer.cli import options as opt
from installer.cli.app import App, application
from installer.cli.entry import run_app
from installer.cli.octopus_certs import served_certificate
from installer.cli.octopus_run import converge
from installer.config import load
from installer.errors import BarracudaError, ChangesPending
from installer.octopus import instances, model, platforms
from installer.octopus.names import check_instance_name
from installer.octopus.sites import add, login, verify
from installer.octopus.sites import remove as removal
from installer.octopus.sites import set as settings_of
from installer.octopus.sites.common import SiteSettings
from installer.octopus.sites.install import InstallOptions
from installer.runner import SubprocessRunner
from installer.target import Target

app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="Create, upgrade and inspect the hosting instances (o1, o2, ...).",
)
platform_app = typer.Typer(no_args_is_help=True, help="The platforms (codebases) of an instance.")
site_app = typer.Typer(no_args_is_help=True, help="The sites of an instance.")
app.add_typer(platform_app, name="platform")
app.add_typer(site_app, name="site")

NAME = typer.Argument(..., help="The instance, e.g. o1.")
TARGET = typer.Argument(..., help="An instance (e.g. o1) or all.")
FORCE = typer.Option(False, "--force", help="Remove the instance with its sites.")
EMAIL = typer.Option("", "--email", help="The instance owner's address (_MY_EMAIL).")
PHP = typer.Option("", "--php", help="PHP version, e.g. 8.2 (default: the machine's).")
PATH_OPT = typer.Option("", "--path", help="Copy the codebase from this directory.")
GIT = typer.Option("", "--git", help="Clone the codebase from this git URL.")
REF = typer.Option("", "--ref", help="The branch or tag to clone (with --git).")
PLATFORM = typer.Option(..., "--platform", help="The platform the site runs on.")
ALIAS = typer.Option([], "--alias", help="Another name the site answers to (repeatable).")
KIND = typer.Option(None, "--type", help="The vhost type: drupal (8 and later), drupal7, "
                    "php (any PHP application; plain is its older name), or auto (the "
                    "platform's, the default).")
HSTS = typer.Option(None, "--hsts/--no-hsts", help="Send Strict-Transport-Security on HTTPS.")
CACHE_TTL = typer.Option(None, "--cache-ttl", help="Speed Booster seconds for anonymous "
                         "pages (0 = the default of profiles/nginx.yml).")
CERT = typer.Option(None, "--certificate", help="The site's own certificate (PEM); \"\" = "
                    "the wildcard one.")
CERT_KEY = typer.Option(None, "--certificate-key", help="The key of --certificate.")
HTTPS = typer.Option(None, "--https", help="letsencrypt (issued for the site's names), "
                     "wildcard, or default (the instance's _HTTPS, else the machine's).")
HTTPS_DEV = typer.Option(None, "--https-dev-aliases/--no-https-dev-aliases",
                         help="A Let's Encrypt certificate covers the dev aliases too.")
INSTALL = typer.Option(False, "--install", help="Install Drupal (its own installer, as the "
                       "instance's user); a failure leaves nothing behind.")
PROFILE = typer.Option("standard", "--profile", help="The install profile (with --install).")
SITE_NAME = typer.Option("", "--site-name", help="The site's name (default: its domain).")
ADMIN_EMAIL = typer.Option("", "--admin-email", help="The admin account's address (default: "
                           "the instance's _MY_EMAIL).")
LOCALE = typer.Option("en", "--locale", help="The site's language (with --install).")
DOMAIN = typer.Argument(..., help="The site's domain.")


@app.callback()
def root(ctx: typer.Context) -> None:
    ctx.obj = App()  # the commands' shared options fill it in (installer/cli/options.py)


CONVERGE = opt.takes(*opt.CONVERGE)
READ = opt.takes("json", "root")


@app.command(cls=CONVERGE)
def install(ctx: typer.Context, name: str = NAME, email: str = EMAIL, php: str = PHP) -> None:
    """Create instance NAME (its users, tree, pool, Nginx include and database account)."""
    check_instance_name(name)
    converge(application(ctx), name, "install", instances.install(name, email, php))


def _upgrade(app: App, channel: str, target: str) -> None:
    if target != "all":
        converge(app, check_instance_name(target), f"up-{channel}", instances.upgrade(target),
                 channel)
        return
    names = model.instance_names(Target(app.root))
    if not names:
        app.say("no instances")
        return
    failed: list[str] = []
    pending: list[str] = []
    started = time.monotonic()
    for name in names:
        app.say(f"== {name}")
        try:
            converge(app, name, f"up-{channel}", instances.upgrade(name), channel)
        except ChangesPending:
            pending.append(name)
        except BarracudaError as error:
            app.warn(f"{name}: {error}")
            failed.append(name)
        except typer.Exit as stop:
            if stop.exit_code:
                failed.append(name)
    app.say(f"{len(names)} instances in {time.monotonic() - started:.1f} s: "
            + (f"FAILED {' '.join(failed)}" if failed
               else f"changes pending in {' '.join(pending)}" if pending
               else "all converged"))
    if failed:
        raise typer.Exit(1)
    if pending:
        raise ChangesPending(f"changes pending in {' '.join(pending)}")


@app.command("up-stable", cls=CONVERGE)
def up_stable(ctx: typer.Context, target: str = TARGET) -> None:
    """Converge one instance, or all of them one after another, to the stable release."""
    _upgrade(application(ctx), "stable", target)


@app.command("up-head", cls=CONVERGE)
def up_head(ctx: typer.Context, target: str = TARGET) -> None:
    """Converge one instance, or all of them one after another, to the head release."""
    _upgrade(application(ctx), "head", target)


@app.command(cls=CONVERGE)
def remove(ctx: typer.Context, name: str = NAME, force: bool = FORCE) -> None:
    """Back up instance NAME whole, then remove its users, pool, Nginx include, databases."""
    converge(application(ctx), name, "remove", instances.remove(name, force))


@app.command("list", cls=READ)
def list_instances(ctx: typer.Context) -> None:
    """The instances on this machine."""
    this = application(ctx)
    names = model.instance_names(Target(this.root))
    if this.json:
        this.emit_json({"instances": names})
        return
    print("\n".join(names) if names else "no instances")


def _disk_used(path: Path) -> int:
    total = 0
    for top, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_blocks * 512
            except OSError:
                continue
    return total


@app.command(cls=READ)
def status(ctx: typer.Context, name: str = NAME) -> None:
    """Users, pool, platforms, sites, disk used, PHP version and the last converge."""
    this = application(ctx)
    target = Target(this.root)
    instance = model.existing(target, name)
    cfg = load(target.path(instance.config_file), profile="octopus")
    sites = model.sites(target, instance)
    pools = sorted(str(p) for p in target.path("/etc/php").glob(f"*/fpm/pool.d/{name}.conf"))
    sockets = sorted(str(p) for p in target.path("/run/php").glob(f"{name}.*.sock"))
    log = target.path(f"{instance.root}/log/octopus.log")
    history = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    users: dict[str, str | None] = {}
    for user in instance.users:
        try:
            users[user] = pwd.getpwnam(user).pw_dir if target.live else "?"
        except KeyError:
            users[user] = None
    report: dict[str, Any] = {
        "instance": name,
        "php": cfg.settings["_PHP_FPM_VERSION"].raw,
        "users": users,
        "pools": pools,
        "sockets": sockets,
        "platforms": [p.name for p in model.platforms(target, instance)],
        "sites": [{"domain": s.domain, "platform": s.platform, "aliases": list(s.aliases),
                   "php": s.php or None} for s in sites],
        "disk_used_bytes": _disk_used(target.path(instance.root)),
        "last_converge": history[-1] if history else None,
        "access": octopus_access.access_report(target, instance)["accounts"],
    }
    if this.json:
        this.emit_json(report)
        return
    print(f"instance {name}: PHP {report['php']}, {len(sites)} sites, "
          f"{report['disk_used_bytes'] // (1024 * 1024)} MiB used")
    for user, home in users.items():
        print(f"  user {user:<14} " + (f"home {home}" if home else "MISSING"))
    for pool in pools:
        print(f"  pool {pool}")
    for socket in sockets:
        print(f"  socket {socket}")
    print(f"  platforms: {' '.join(report['platforms']) or 'none'}")
    for site in report["sites"]:
        aliases = f" (aliases {' '.join(site['aliases'])})" if site["aliases"] else ""
        print(f"  site {site['domain']} on {site['platform']}{aliases}")
    for line in octopus_access.access_lines(report["access"]):
        print(f"  {line}")
    print(f"  last converge: {report['last_converge'] or 'never'}")


@platform_app.command("add", cls=CONVERGE)
def platform_add(
    ctx: typer.Context, name: str = NAME,
    platform: str = typer.Argument(..., help="The platform's name."),
    path: str = PATH_OPT, git: str = GIT, ref: str = REF,
) -> None:
    """Place a codebase (a directory with an index.php front controller) into NAME."""
    converge(application(ctx), name, "platform-add",
             platforms.platform_add(name, platform, path, git, ref))


@platform_app.command("list", cls=READ)
def platform_list(ctx: typer.Context, name: str = NAME) -> None:
    """The platforms of NAME and the sites on each."""
    this = application(ctx)
    target = Target(this.root)
    instance = model.existing(target, name)
    sites = model.sites(target, instance)
    rows = [{"name": p.name, "kind": p.kind, "core": p.describe(),
             "docroot": p.docroot or ".", "profiles": list(p.detected.get("profiles", [])),
             "php_min": p.detected.get("php_min", ""), "source": p.source, "ref": p.ref,
             "sites": [s.domain for s in sites if s.platform == p.name]}
            for p in model.platforms(target, instance)]
    if this.json:
        this.emit_json({"instance": name, "platforms": rows})
        return
    if not rows:
        print("no platforms")
    for row in rows:
        print(f"{row['name']:<20} {row['core']:<14} docroot {row['docroot']:<8} "
              f"profiles {','.join(row['profiles']) or '-'}  "
              f"sites {' '.join(row['sites']) or '-'}")


@platform_app.command("verify", cls=CONVERGE)
def platform_verify(
    ctx: typer.Context, name: str = NAME,
    platform: str = typer.Argument(..., help="The platform's name."),
) -> None:
    """Read a platform's tree again (core, docroot, profiles, Drush, PHP) and converge."""
    converge(application(ctx), name, "platform-verify",
             platforms.platform_verify(name, platform))


@platform_app.command("remove", cls=CONVERGE)
def platform_remove(
    ctx: typer.Context, name: str = NAME,
    platform: str = typer.Argument(..., help="The platform's name."),
) -> None:
    """Remove a platform no site uses (its code is archived in the instance's backups/)."""
    converge(application(ctx), name, "platform-remove",
             platforms.platform_remove(name, platform))


@site_app.command("add", cls=CONVERGE)
def site_add(
    ctx: typer.Context, name: str = NAME,
    domain: str = typer.Argument(..., help="The site's domain."),
    platform: str = PLATFORM, alias: list[str] = ALIAS, php: str = PHP,
    kind: Optional[str] = KIND, hsts: Optional[bool] = HSTS,
    cache_ttl: Optional[int] = CACHE_TTL, certificate: Optional[str] = CERT,
    certificate_key: Optional[str] = CERT_KEY, install: bool = INSTALL,
    profile: str = PROFILE, site_name: str = SITE_NAME, admin_email: str = ADMIN_EMAIL,
    locale: str = LOCALE, https: Optional[str] = HTTPS, https_dev: Optional[bool] = HTTPS_DEV,
) -> None:
    """Create a site: its database and user, files directories, settings.php and vhost
    (HTTP and HTTPS); with --install, Drupal installed in the same run."""
    settings = SiteSettings(kind, hsts, cache_ttl, certificate, certificate_key, https,
                            https_dev)
    options = InstallOptions(profile, site_name, admin_email, locale) if install else None
    converge(application(ctx), name, "site-add",
             add.site_add(name, domain, platform, alias, php, settings, options))


@site_app.command("verify", cls=CONVERGE)
def site_verify(
    ctx: typer.Context, name: str = NAME,
    domain: str = typer.Argument("", help="The site's domain."),
    every: bool = typer.Option(False, "--all", help="Every site of the instance."),
) -> None:
    """Re-apply owners, modes, settings.php and vhost; check Drupal bootstraps and answers."""
    converge(application(ctx), name, "site-verify", verify.site_verify(name, domain, every))


@site_app.command("login", cls=opt.takes("root"))
def site_login(ctx: typer.Context, name: str = NAME, domain: str = DOMAIN) -> None:
    """Print a one-time login link for the site's admin account."""
    root = application(ctx).root
    print(login.login_link(SubprocessRunner(), Target(root), name, domain))


@site_app.command("cron", hidden=True, cls=opt.takes("root"))
def site_cron(ctx: typer.Context, name: str = NAME, domain: str = DOMAIN) -> None:
    """Run Drupal's cron of a site as the instance's user (the instance's cron file)."""
    root = application(ctx).root
    login.run_cron(SubprocessRunner(), Target(root), name, domain, root=root)


@site_app.command("set", cls=CONVERGE)
def site_set(
    ctx: typer.Context, name: str = NAME,
    domain: str = typer.Argument(..., help="The site's domain."),
    kind: Optional[str] = KIND, hsts: Optional[bool] = HSTS,
    cache_ttl: Optional[int] = CACHE_TTL, certificate: Optional[str] = CERT,
    certificate_key: Optional[str] = CERT_KEY, https: Optional[str] = HTTPS,
    https_dev: Optional[bool] = HTTPS_DEV,
) -> None:
    """Change a site's vhost settings (type, HSTS, cache TTL, certificate)."""
    settings = SiteSettings(kind, hsts, cache_ttl, certificate, certificate_key, https,
                            https_dev)
    converge(application(ctx), name, "site-set", settings_of.site_set(name, domain, settings))


@site_app.command("list", cls=READ)
def site_list(ctx: typer.Context, name: str = NAME) -> None:
    """The sites of NAME."""
    this = application(ctx)
    target = Target(this.root)
    sites = model.sites(target, model.existing(target, name))
    rows: list[dict[str, Any]] = [
        {"domain": s.domain, "platform": s.platform, "aliases": list(s.aliases),
         "database": s.db_name, "php": s.php or None, "type": s.kind or None,
         "hsts": s.hsts, "cache_ttl": s.cache_ttl or None, "disabled": s.disabled,
         **served_certificate(target, model.existing(target, name), s)} for s in sites]
    if this.json:
        this.emit_json({"instance": name, "sites": rows})
        return
    if not rows:
        print("no sites")
    for row in rows:
        aliases = " ".join(row["aliases"])
        print(f"{row['domain']:<32} {row['platform']:<20} {row['database']}  "
              f"{row['certificate_issuer'] or '-'} {row['certificate_expires'] or '-'}  "
              f"{aliases}{'  DISABLED' if row['disabled'] else ''}".rstrip())


@site_app.command("remove", cls=CONVERGE)
def site_remove(ctx: typer.Context, name: str = NAME,
                domain: str = typer.Argument(..., help="The site's domain.")) -> None:
    """Back a site up, then remove its vhost, database, user and files."""
    converge(application(ctx), name, "site-remove", removal.site_remove(name, domain))


octopus_backup.register(app)
octopus_certs.register(app)
octopus_access.register(app)
octopus_lifecycle.register(site_app)
octopus_state.register(site_app)
octopus_move.register(site_app)
octopus_ftp.register(octopus_access.client_app)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
