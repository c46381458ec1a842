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

from installer import __version__
from installer.cli import octopus_backup
from installer.cli import options as opt
from installer.cli.app import App
from installer.cli.entry import run_app
from installer.config import ignored_warning, load
from installer.converge import Builder, run_converge
from installer.errors import BarracudaError
from installer.octopus import instances, model, platforms
from installer.octopus.names import check_instance_name
from installer.octopus.sites import add
from installer.octopus.sites import remove as removal
from installer.octopus.sites import set as settings_of
from installer.octopus.sites.common import SiteSettings
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
                    "plain, or auto (the platform's, the default).")
HSTS = typer.Option(None, "--hsts/--no-hsts", help="Send Strict-Transport-Security on HTTPS.")
CACHE_TTL = typer.Option(None, "--cache-ttl", help="Speed Booster seconds for anonymous "
                         "pages (0 = the default of profiles/nginx.yml).")
CERT = typer.Option(None, "--certificate", help="The site's own certificate (PEM); \"\" = "
                    "the wildcard one.")
CERT_KEY = typer.Option(None, "--certificate-key", help="The key of --certificate.")


def _app(yes: bool, dry_run: bool, json: bool, root: Path, config: Optional[str],
         verbose: int, quiet: bool) -> App:
    return App(verbose=verbose, quiet=quiet, json=json, yes=yes, dry_run=dry_run, root=root,
               config=config)


def _record(app: App, instance: str, command: str, summary: str) -> None:
    """The instance's own history line (log/octopus.log), read by `octopus status`."""
    log = Target(app.root).path(f"{model.Instance(instance).root}/log/octopus.log")
    if log.parent.is_dir():
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {command} barracuda "
                         f"{__version__}: {summary}\n")


def _run(app: App, instance: str, command: str, build: Builder, channel: str = "stable") -> None:
    cnf = Target(app.root).path(model.Instance(instance).config_file)
    if instance in model.instance_names(Target(app.root)):
        warning = ignored_warning(load(cnf, profile="octopus"), "octopus")
        if warning:
            app.warn(warning)
    outcome = run_converge(app, f"octopus-{command}-{instance}", build, channel)
    if outcome is None:
        return
    if not app.dry_run:
        _record(app, instance, command, outcome.summary())
    if outcome.count("failed"):
        raise typer.Exit(1)


@app.command()
def install(
    name: str = NAME, email: str = EMAIL, php: str = PHP,
    yes: bool = opt.YES, dry_run: bool = opt.DRY_RUN, json: bool = opt.JSON,
    root: Path = opt.ROOT, config: Optional[str] = opt.CONFIG,
    verbose: int = opt.VERBOSE, quiet: bool = opt.QUIET,
) -> None:
    """Create instance NAME (its users, tree, pool, Nginx include and database account)."""
    check_instance_name(name)
    ctx = _app(yes, dry_run, json, root, config, verbose, quiet)
    _run(ctx, name, "install", instances.install(name, email, php))


def _upgrade(channel: str, target: str, ctx: App) -> None:
    if target != "all":
        _run(ctx, check_instance_name(target), f"up-{channel}", instances.upgrade(target),
             channel)
        return
    names = model.instance_names(Target(ctx.root))
    if not names:
        ctx.say("no instances")
        return
    failed: list[str] = []
    started = time.monotonic()
    for name in names:
        ctx.say(f"== {name}")
        try:
            _run(ctx, name, f"up-{channel}", instances.upgrade(name), channel)
        except BarracudaError as error:
            ctx.warn(f"{name}: {error}")
            failed.append(name)
        except typer.Exit as stop:
            if stop.exit_code:
                failed.append(name)
    ctx.say(f"{len(names)} instances in {time.monotonic() - started:.1f} s: "
            + (f"FAILED {' '.join(failed)}" if failed else "all converged"))
    if failed:
        raise typer.Exit(1)


@app.command("up-stable")
def up_stable(
    target: str = TARGET, yes: bool = opt.YES, dry_run: bool = opt.DRY_RUN,
    json: bool = opt.JSON, root: Path = opt.ROOT, config: Optional[str] = opt.CONFIG,
    verbose: int = opt.VERBOSE, quiet: bool = opt.QUIET,
) -> None:
    """Converge one instance, or all of them one after another, to the stable release."""
    _upgrade("stable", target, _app(yes, dry_run, json, root, config, verbose, quiet))


@app.command("up-head")
def up_head(
    target: str = TARGET, yes: bool = opt.YES, dry_run: bool = opt.DRY_RUN,
    json: bool = opt.JSON, root: Path = opt.ROOT, config: Optional[str] = opt.CONFIG,
    verbose: int = opt.VERBOSE, quiet: bool = opt.QUIET,
) -> None:
    """Converge one instance, or all of them one after another, to the head release."""
    _upgrade("head", target, _app(yes, dry_run, json, root, config, verbose, quiet))


@app.command()
def remove(
    name: str = NAME, force: bool = FORCE, yes: bool = opt.YES, dry_run: bool = opt.DRY_RUN,
    json: bool = opt.JSON, root: Path = opt.ROOT, config: Optional[str] = opt.CONFIG,
    verbose: int = opt.VERBOSE, quiet: bool = opt.QUIET,
) -> None:
    """Back up instance NAME whole, then remove its users, pool, Nginx include, databases."""
    ctx = _app(yes, dry_run, json, root, config, verbose, quiet)
    _run(ctx, name, "remove", instances.remove(name, force))


@app.command("list")
def list_instances(json: bool = opt.JSON, root: Path = opt.ROOT) -> None:
    """The instances on this machine."""
    names = model.instance_names(Target(root))
    if json:
        App().emit_json({"instances": names})
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


@app.command()
def status(name: str = NAME, json: bool = opt.JSON, root: Path = opt.ROOT) -> None:
    """Users, pool, platforms, sites, disk used, PHP version and the last converge."""
    target = Target(root)
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
    }
    if json:
        App().emit_json(report)
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
    print(f"  last converge: {report['last_converge'] or 'never'}")


@platform_app.command("add")
def platform_add(
    name: str = NAME, platform: str = typer.Argument(..., help="The platform's name."),
    path: str = PATH_OPT, git: str = GIT, ref: str = REF,
    yes: bool = opt.YES, dry_run: bool = opt.DRY_RUN, json: bool = opt.JSON,
    root: Path = opt.ROOT, config: Optional[str] = opt.CONFIG,
    verbose: int = opt.VERBOSE, quiet: bool = opt.QUIET,
) -> None:
    """Place a codebase (a directory with an index.php front controller) into NAME."""
    ctx = _app(yes, dry_run, json, root, config, verbose, quiet)
    _run(ctx, name, "platform-add", platforms.platform_add(name, platform, path, git, ref))


@platform_app.command("list")
def platform_list(name: str = NAME, json: bool = opt.JSON, root: Path = opt.ROOT) -> None:
    """The platforms of NAME and the sites on each."""
    target = Target(root)
    instance = model.existing(target, name)
    sites = model.sites(target, instance)
    rows = [{"name": p.name, "kind": p.kind, "source": p.source, "ref": p.ref,
             "sites": [s.domain for s in sites if s.platform == p.name]}
            for p in model.platforms(target, instance)]
    if json:
        App().emit_json({"instance": name, "platforms": rows})
        return
    if not rows:
        print("no platforms")
    for row in rows:
        print(f"{row['name']:<24} {row['kind']:<8} {len(row['sites'])} sites  {row['source']}")


@platform_app.command("remove")
def platform_remove(
    name: str = NAME, platform: str = typer.Argument(..., help="The platform's name."),
    yes: bool = opt.YES, dry_run: bool = opt.DRY_RUN, json: bool = opt.JSON,
    root: Path = opt.ROOT, config: Optional[str] = opt.CONFIG,
    verbose: int = opt.VERBOSE, quiet: bool = opt.QUIET,
) -> None:
    """Remove a platform no site uses (its code is archived in the instance's backups/)."""
    ctx = _app(yes, dry_run, json, root, config, verbose, quiet)
    _run(ctx, name, "platform-remove", platforms.platform_remove(name, platform))


@site_app.command("add")
def site_add(
    name: str = NAME, domain: str = typer.Argument(..., help="The site's domain."),
    platform: str = PLATFORM, alias: list[str] = ALIAS, php: str = PHP,
    kind: Optional[str] = KIND, hsts: Optional[bool] = HSTS,
    cache_ttl: Optional[int] = CACHE_TTL, certificate: Optional[str] = CERT,
    certificate_key: Optional[str] = CERT_KEY,
    yes: bool = opt.YES, dry_run: bool = opt.DRY_RUN, json: bool = opt.JSON,
    root: Path = opt.ROOT, config: Optional[str] = opt.CONFIG,
    verbose: int = opt.VERBOSE, quiet: bool = opt.QUIET,
) -> None:
    """Create a site: its database and user, files directories and vhost (HTTP and HTTPS)."""
    ctx = _app(yes, dry_run, json, root, config, verbose, quiet)
    settings = SiteSettings(kind, hsts, cache_ttl, certificate, certificate_key)
    _run(ctx, name, "site-add", add.site_add(name, domain, platform, alias, php, settings))


@site_app.command("set")
def site_set(
    name: str = NAME, domain: str = typer.Argument(..., help="The site's domain."),
    kind: Optional[str] = KIND, hsts: Optional[bool] = HSTS,
    cache_ttl: Optional[int] = CACHE_TTL, certificate: Optional[str] = CERT,
    certificate_key: Optional[str] = CERT_KEY,
    yes: bool = opt.YES, dry_run: bool = opt.DRY_RUN, json: bool = opt.JSON,
    root: Path = opt.ROOT, config: Optional[str] = opt.CONFIG,
    verbose: int = opt.VERBOSE, quiet: bool = opt.QUIET,
) -> None:
    """Change a site's vhost settings (type, HSTS, cache TTL, certificate)."""
    ctx = _app(yes, dry_run, json, root, config, verbose, quiet)
    settings = SiteSettings(kind, hsts, cache_ttl, certificate, certificate_key)
    _run(ctx, name, "site-set", settings_of.site_set(name, domain, settings))


@site_app.command("list")
def site_list(name: str = NAME, json: bool = opt.JSON, root: Path = opt.ROOT) -> None:
    """The sites of NAME."""
    target = Target(root)
    sites = model.sites(target, model.existing(target, name))
    rows: list[dict[str, Any]] = [
        {"domain": s.domain, "platform": s.platform, "aliases": list(s.aliases),
         "database": s.db_name, "php": s.php or None, "type": s.kind or None,
         "hsts": s.hsts, "cache_ttl": s.cache_ttl or None} for s in sites]
    if json:
        App().emit_json({"instance": name, "sites": rows})
        return
    if not rows:
        print("no sites")
    for row in rows:
        aliases = " ".join(row["aliases"])
        print(f"{row['domain']:<32} {row['platform']:<20} {row['database']}  {aliases}")


@site_app.command("remove")
def site_remove(
    name: str = NAME, domain: str = typer.Argument(..., help="The site's domain."),
    yes: bool = opt.YES, dry_run: bool = opt.DRY_RUN, json: bool = opt.JSON,
    root: Path = opt.ROOT, config: Optional[str] = opt.CONFIG,
    verbose: int = opt.VERBOSE, quiet: bool = opt.QUIET,
) -> None:
    """Back a site up, then remove its vhost, database, user and files."""
    ctx = _app(yes, dry_run, json, root, config, verbose, quiet)
    _run(ctx, name, "site-remove", removal.site_remove(name, domain))


octopus_backup.register(app)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
