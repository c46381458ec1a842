"""`octopus site clone|migrate|rename|upgrade` (registered on the site app by `register`):
the Aegir site workflows, each a converge run, and the safe upgrade path as a sequence of
them (installer/octopus/sites/upgrade.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import typer

from installer.cli import options as opt
from installer.cli.app import App, application
from installer.cli.octopus_run import converge
from installer.errors import BarracudaError, Declined, Interrupted
from installer.octopus import platforms
from installer.octopus.names import check_instance_name
from installer.octopus.sites import clone, migrate, upgrade
from installer.octopus.sites.upgrade import Step

NAME = typer.Argument(..., help="The instance, e.g. o1.")
DOMAIN = typer.Argument(..., help="The site's domain.")
TO = typer.Option(..., "--platform", help="The platform the site moves to.")
CLONE_TO = typer.Option("", "--platform", help="The clone's platform (default: the source's).")
NEW_NAME = typer.Option("", "--domain", help="The site's new name (a rename as it moves).")
CHECK_PATH = typer.Option([], "--check-path", help="A page the test clone must answer below "
                          "400, e.g. /node/1 (repeatable).")
KEEP_CLONE = typer.Option(False, "--keep-clone", help="Keep the test clone (default: remove "
                          "it once checked, whatever the outcome).")
CONVERGE = opt.takes(*opt.CONVERGE)


def site_clone(ctx: typer.Context, name: str = NAME,
               source: str = typer.Argument(..., help="The site to copy."),
               new: str = typer.Argument(..., help="The clone's domain."),
               platform: str = CLONE_TO) -> None:
    """Copy a site under a new domain: a new database and account, its files, its own
    settings.php, vhost and cron; its paths rewritten, caches cleared. The source keeps
    serving; aliases and certificates are not copied."""
    check_instance_name(name)
    converge(application(ctx), name, "site-clone", clone.site_clone(name, source, new, platform))


def site_migrate(ctx: typer.Context, name: str = NAME, domain: str = DOMAIN,
                 platform: str = TO, new_domain: str = NEW_NAME) -> None:
    """Move a site to another platform (and/or rename it): a verified backup, maintenance
    mode, its directory and database moved, the database updates run, caches cleared, the
    front page checked. Any failure puts it back on its old platform and database."""
    check_instance_name(name)
    converge(application(ctx), name, "site-migrate",
             migrate.site_migrate(name, domain, platform, new_domain))


def site_rename(ctx: typer.Context, name: str = NAME, domain: str = DOMAIN,
                new_domain: str = typer.Argument(..., help="The site's new domain.")) -> None:
    """Rename a site on its own platform (a migrate with --domain)."""
    check_instance_name(name)
    converge(application(ctx), name, "site-rename",
             migrate.site_rename(name, domain, new_domain))


def site_upgrade(ctx: typer.Context, name: str = NAME, domain: str = DOMAIN,
                 platform: str = TO, check_path: list[str] = CHECK_PATH,
                 keep_clone: bool = KEEP_CLONE) -> None:
    """Upgrade a site safely: verify the new platform, clone the site to a test name,
    migrate and check the clone, and only when it passed migrate the live site."""
    check_instance_name(name)
    this = application(ctx)
    steps = upgrade.upgrade_steps(name, domain, platform,
                                  platforms.platform_verify(name, platform), check_path,
                                  keep_clone, since=int(time.time()))
    this.say(f"Upgrade of {domain} to platform {platform}, in {len(steps)} runs:")
    for step in steps:
        this.say(f"  {step.number}. {step.what}" + (" (the live site)" if step.live else ""))
    inner = replace(this, options=replace(this.options, json=False))  # one JSON at the end
    if this.dry_run:
        _dry_run(inner, name, steps)
        if this.json:
            this.emit_json({"steps": [{"step": s.number, "what": s.what, "live": s.live}
                                      for s in steps]})
        return
    report: list[dict[str, Any]] = []
    failed: str | None = None
    cloned = False
    try:
        for step in steps:
            if (not cloned) if step.number == 5 else failed is not None:
                continue  # after a failure, only the clone's removal runs
            if step.live:
                this.say(f"== the test clone passed: {domain} moves now")
            problem = _run(inner, name, step, report)
            cloned = cloned or (step.number == 2 and problem is None)
            failed = failed or problem
    finally:
        if this.json:
            this.emit_json({"steps": report, "upgraded": failed is None
                            and len(report) == len(steps)})
    if failed is not None:
        kept = f"; {upgrade.trial_domain(domain)} is kept" if keep_clone and cloned else ""
        raise BarracudaError(f"upgrade of {domain} stopped: {failed}; the live site was not "
                             f"touched{kept}")
    this.say(f"{domain} is on platform {platform}")


def _run(app: App, name: str, step: Step, report: list[dict[str, Any]]) -> str | None:
    """Run one step; what failed ("step N (why)"), or None."""
    app.say(f"== step {step.number}: {step.what}")
    try:
        outcome = converge(app, name, step.command, step.build)
    except Declined:
        raise
    except (BarracudaError, typer.Exit) as exc:
        why = str(exc) if isinstance(exc, BarracudaError) else "see the failed step above"
        report.append({"step": step.number, "what": step.what, "ok": False, "error": why})
        if step.live or isinstance(exc.__cause__, Interrupted):
            raise  # the live move's own rollback said it all; a stop stops everything
        app.warn(f"step {step.number} failed: {why}")
        return f"step {step.number} ({step.what}) failed"
    report.append({"step": step.number, "what": step.what, "ok": True,
                   "summary": outcome.summary() if outcome else "nothing to change"})
    return None


def _dry_run(app: App, name: str, steps: list[Step]) -> None:
    """The plans that can be made now: the platform's verify, the clone and the live move
    (the clone's own migrate, check and removal need the clone to exist)."""
    for step in steps:
        if step.number in (1, 2) or step.live:
            app.say(f"== step {step.number}: {step.what}")
            converge(app, name, step.command, step.build)
        else:
            app.say(f"== step {step.number}: {step.what} (planned once step 2 made the "
                    "clone)")


def register(site_app: typer.Typer) -> None:
    site_app.command("clone", cls=CONVERGE)(site_clone)
    site_app.command("migrate", cls=CONVERGE)(site_migrate)
    site_app.command("rename", cls=CONVERGE)(site_rename)
    site_app.command("upgrade", cls=CONVERGE)(site_upgrade)
