"""`barracuda up-stable`, `up-head` (optionally `system`) and `rollback`.

An upgrade is `barracuda install`'s converge with the channel's manifest: read the manifest,
update the tool itself when the channel names another version (then continue with the new
code), snapshot every managed file and the versions in use, apt-get update, move the stack's
packages to the channel's versions, re-render the configuration, restart only what changed,
validate, check health, and append to versions.log."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from installer import __version__
from installer.agents.monitor import probes as monitor_probes
from installer.agents.monitor.run import service_specs
from installer.cli import options as opt
from installer.cli.app import App
from installer.config import Config, load, resolve_path
from installer.converge import (
    ROLLED_BACK,
    _context,
    component_preflight,
    held_packages,
    open_session,
    preflight,
    run_converge,
)
from installer.data import load_profile
from installer.errors import ApplyError, BarracudaError, UsageError
from installer.facts import Facts
from installer.lock import LOCK_FILE, locked
from installer.plan import Component
from installer.runlog import LOG_DIR
from installer.stack import build
from installer.target import Target
from installer.upgrade import UpgradeError, selfupdate
from installer.upgrade.channel import channel_build, system_build
from installer.upgrade.manifest import Manifest, load_channel, newer
from installer.upgrade.packages import apt_update
from installer.upgrade.snapshot import last_snapshot, restore, run_info

MODE_ARG = typer.Argument(None, help="system: operating-system packages only (BOA's mode).")
FORCE = typer.Option(False, "--force", help="Allow moving from head back to stable, or to an "
                                            "older barracuda.")


def followed(target: Target) -> tuple[str, str, str] | None:
    """(channel, barracuda version, time) of the last up-* run in versions.log."""
    path = target.path(LOG_DIR) / "versions.log"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
        if "manifest" in fields and "channel" in fields:
            return fields["channel"], fields.get("barracuda", "?"), line.split()[0]
    return None


def guard_downgrade(target: Target, manifest: Manifest, force: bool) -> None:
    """Head back to stable, or an older tool, only with --force, saying what will happen."""
    if force:
        return
    tool = (f"barracuda stays at {__version__}" if manifest.tool == __version__
            else f"barracuda {__version__} -> {manifest.tool}")
    what = (f"{tool}, the stack's packages to the "
            f"{manifest.channel} channel's versions, configuration revision "
            f"{manifest.config_revision}")
    last = followed(target)
    if manifest.channel == "stable" and last and last[0] == "head":
        raise UsageError(f"this machine follows head (barracuda {last[1]} since {last[2]}); "
                         f"up-stable moves it back to stable: {what}. Packages are not "
                         "downgraded unless stable pins them. Run `barracuda up-stable --force` "
                         "to do it")
    if newer(__version__, manifest.tool):
        raise UsageError(f"barracuda {__version__} is newer than the {manifest.channel} "
                         f"channel's {manifest.tool}; going back means {what}. Run it again "
                         "with --force to do it")


def self_update(app: App, config: Config, manifest: Manifest) -> None:
    """Install the channel's barracuda into a new environment, switch to it and continue
    the same command with it (this function only returns when nothing is to be done)."""
    if manifest.tool == __version__:
        return
    if os.environ.get("BARRACUDA_SELF_UPDATED"):
        raise UpgradeError(f"the updated barracuda reports {__version__}, the channel expects "
                           f"{manifest.tool}; stopping rather than updating in a loop")
    source = str(config["_BARRACUDA_TOOL_SOURCE"])
    if not source:
        raise config.error("_BARRACUDA_TOOL_SOURCE", f"the {manifest.channel} channel needs "
                                                     f"barracuda {manifest.tool} (this is "
                                                     f"{__version__}) and no source is set: "
                                                     "set it to a wheel URL or a package index")
    if app.dry_run or app.check:
        app.say(f"barracuda {__version__} -> {manifest.tool} would be installed from {source} "
                "first; the plan below is this version's")
        return
    # Every preflight of the converge runs before the tool changes, not only after.
    selfupdate.preflight()
    session = open_session(app)
    preflight(session)
    components = channel_build(manifest)(session.config, session.facts, session.redactor)
    held_packages(session, components)
    with locked(session.target.path(LOCK_FILE)):
        component_preflight(components, _context(session))
        app.say(f"Updating barracuda {__version__} -> {manifest.tool} from {source}")
        env = selfupdate.install(manifest, source, session.runner)
        previous = selfupdate.switch(env)
        selfupdate.prune()
    app.say(f"barracuda {manifest.tool} is live ({env}); the previous environment "
            f"({previous}) is kept for `barracuda rollback`; continuing with the new code")
    selfupdate.reexec(sys.argv[1:], previous)


def tool_back(app: App, env: str) -> None:
    """Switch the tool back to `env` after a failed run that followed a self-update."""
    if env and Path(env).is_dir() and Path(env) != selfupdate.current_env():
        selfupdate.switch(Path(env))
        app.warn(f"barracuda is back at {env}")


def monitor_problems(components: list[Component], facts: Facts) -> list[str]:
    """The monitor's own probes (master process, socket, HTTP, FPM pools) of every service
    it watches; a probe that fails right after a reload gets a few more tries."""
    profile = load_profile("monitor")
    specs = service_specs(components, facts, profile)
    timeout = float(profile["probe_timeout_s"])
    tries = load_profile("upgrade")["verify"]
    problems: list[str] = []
    for _ in range(int(tries["tries"])):
        procs = monitor_probes.snapshot()
        problems = []
        for spec in specs:
            health = monitor_probes.check(spec, procs, timeout)
            if not health.ok:
                problems.append(f"{spec.name}: {health.evidence}")
        if not problems:
            return []
        time.sleep(float(tries["pause_s"]))
    return problems


def verify(app: App, previous_env: str) -> None:
    """After the converge: the monitor's probes and every component's health probe (GET
    /health through Nginx, PHP, MariaDB and Redis); a failure restores the snapshot."""
    session = open_session(app)
    with locked(session.target.path(LOCK_FILE)):
        ctx = _context(session)
        components = build(session.config, session.facts, session.redactor)
        problems = monitor_problems(components, session.facts)
        problems += [p for p in (probe(ctx) for c in components for probe in c.health) if p]
        if not problems:
            app.say("Health: every service the monitor watches answers, /health is ok")
            return
        directory = last_snapshot(session.target)
        if directory is None:
            raise ApplyError(f"health check failed after the upgrade: {problems[0]}")
        restored = restore(ctx, directory, components)
    tool_back(app, previous_env)
    raise ApplyError(f"health check failed after the upgrade: {problems[0]}. Rolled back: "
                     f"restored {len(restored.paths)} files from {directory}")


def up(app: App, channel: str, mode: str | None, force: bool) -> None:
    if mode not in (None, "system"):
        raise UsageError(f'unknown mode "{mode}": the only mode is "system" (operating-system '
                         "packages only)")
    target = Target(app.root)
    config = load(resolve_path(app.config, target.root))
    manifest = load_channel(channel, config, app)
    guard_downgrade(target, manifest, force)
    if mode == "system":
        outcome = run_converge(app, f"up-{channel}-system", system_build, channel,
                               prepare=apt_update, record=manifest.record())
        if outcome is not None and outcome.count("failed"):
            raise typer.Exit(1)
        return
    if target.live:
        self_update(app, config, manifest)
    previous_env = os.environ.get("BARRACUDA_PREVIOUS_ENV", "")
    here = selfupdate.current_env() if target.live else None
    snapshot = {"tool_env_before": previous_env or str(here or "")}
    try:
        outcome = run_converge(app, f"up-{channel}", channel_build(manifest), channel,
                               prepare=apt_update, snapshot=snapshot, record=manifest.record())
    except BarracudaError:
        tool_back(app, previous_env)
        raise
    if outcome is None:
        return
    if outcome.count("failed"):
        tool_back(app, previous_env)
        raise typer.Exit(1)
    if target.live and outcome.count("changed"):
        verify(app, previous_env)


def rollback(app: App) -> None:
    """Restore the last configuration snapshot and the tool environment it ran from."""
    if not (app.yes or sys.stdin.isatty()):
        raise UsageError("not a terminal: pass --yes to roll back")
    session = open_session(app)
    target = session.target
    directory = last_snapshot(target)
    if directory is None:
        raise UsageError("nothing to roll back: no configuration snapshot in "
                         f"{target.path('/var/backups/barracuda/checkpoints')}")
    info = run_info(directory)
    if not app.yes:
        app.say(f"Roll back to the configuration before {directory.name} "
                f"({info.get('command', 'a run')})?")
        if not typer.confirm("Restore it?", default=False, err=True):
            raise typer.Exit(1)
    with locked(target.path(LOCK_FILE)):
        ctx = _context(session)
        components = build(session.config, session.facts, session.redactor)
        restored = restore(ctx, directory, components)
    shown = ", ".join(restored.paths[:3]) + (
        f" and {len(restored.paths) - 3} more" if len(restored.paths) > 3 else "")
    app.say((f"Restored {shown} from {directory}" if restored.paths
             else f"Nothing differed from the snapshot in {directory}")
            + (f", then ran {', '.join(h.replace(':', ' ') for h in restored.handlers)}"
               if restored.handlers else ""))
    env = restored.tool_env or str(selfupdate.previous_env() or "")
    if target.live and env and Path(env).is_dir() and Path(env) != selfupdate.current_env():
        selfupdate.switch(Path(env))
        app.say(f"barracuda is back at {env}")
    app.say("Packages are not downgraded; the versions in use before that run are in "
            f"{directory}{ROLLED_BACK}/run.json")


def register(app: typer.Typer) -> None:
    """Add up-stable, up-head and rollback to the barracuda app."""

    def make_up(channel: str) -> None:
        def command(
            mode: Optional[str] = MODE_ARG, yes: bool = opt.YES, dry_run: bool = opt.DRY_RUN,
            check: bool = opt.CHECK, json: bool = opt.JSON, root: Path = opt.ROOT,
            config: Optional[str] = opt.CONFIG, verbose: int = opt.VERBOSE,
            quiet: bool = opt.QUIET, keep_local_edits: bool = opt.KEEP_LOCAL_EDITS,
            force: bool = FORCE,
        ) -> None:
            ctx = App(verbose=verbose, quiet=quiet, json=json, yes=yes, dry_run=dry_run,
                      check=check, keep_local_edits=keep_local_edits, root=root, config=config)
            up(ctx, channel, mode, force)

        command.__doc__ = (f"Upgrade to the {channel} channel: the tool, the stack's packages "
                           "and its configuration (`system`: operating-system packages only).")
        app.command(f"up-{channel}")(command)

    make_up("stable")
    make_up("head")

    @app.command("rollback")
    def rollback_command(
        yes: bool = opt.YES, root: Path = opt.ROOT, config: Optional[str] = opt.CONFIG,
        quiet: bool = opt.QUIET,
    ) -> None:
        """Restore the last configuration snapshot and the previous tool environment."""
        rollback(App(yes=yes, root=root, config=config, quiet=quiet))
