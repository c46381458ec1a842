"""The upgrade workflows behind `barracuda up-stable`, `up-head` (optionally `system`) and
`rollback`; the CLI only parses the command line and reports.

An upgrade is `barracuda install`'s converge with the channel's manifest: read the manifest,
update the tool itself when the channel names another version (then continue with the new
code), snapshot every managed file and the versions in use, apt-get update, move the stack's
packages to the channel's versions, re-render the configuration, restart only what changed,
validate, check health, and append to versions.log."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from installer import __version__
from installer.agents.monitor import probes as monitor_probes
from installer.agents.monitor.run import service_specs
from installer.apply import Outcome, listed
from installer.config import Config, load, resolve_path
from installer.converge import (
    ROLLED_BACK,
    Console,
    RunOptions,
    component_preflight,
    context,
    held_packages,
    open_session,
    preflight,
    run_converge,
)
from installer.data import load_profile
from installer.errors import ApplyError, BarracudaError, Declined, UsageError
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
from installer.upgrade.snapshot import choose, last_snapshot, preview, restore, run_info

MODES = ("system",)


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


def self_update(options: RunOptions, console: Console, config: Config, manifest: Manifest,
                argv: Sequence[str]) -> None:
    """Install the channel's barracuda into a new environment, switch to it and continue
    the same command (`argv`) with it (this function only returns when nothing is to be
    done)."""
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
    if options.dry_run or options.check:
        console.say(f"barracuda {__version__} -> {manifest.tool} would be installed from "
                    f"{source} first; the plan below is this version's")
        return
    # Every preflight of the converge runs before the tool changes, not only after.
    selfupdate.preflight()
    session = open_session(options, console)
    preflight(session)
    components = channel_build(manifest)(session.config, session.facts, session.redactor)
    held_packages(session, components)
    with locked(session.target.path(LOCK_FILE)):
        component_preflight(components, context(session))
        console.say(f"Updating barracuda {__version__} -> {manifest.tool} from {source}")
        env = selfupdate.install(manifest, source, session.runner)
        previous = selfupdate.switch(env)
        selfupdate.prune()
    console.say(f"barracuda {manifest.tool} is live ({env}); the previous environment "
                f"({previous}) is kept for `barracuda rollback`; continuing with the new code")
    selfupdate.reexec(list(argv), previous)


def tool_back(console: Console, env: str) -> None:
    """Switch the tool back to `env` after a failed run that followed a self-update."""
    if env and Path(env).is_dir() and Path(env) != selfupdate.current_env():
        selfupdate.switch(Path(env))
        console.warn(f"barracuda is back at {env}")


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
            if not spec.probed:  # no probe in profiles/monitor.yml: its own health checks
                continue
            health = monitor_probes.check(spec, procs, timeout)
            if not health.ok:
                problems.append(f"{spec.name}: {health.evidence}")
        if not problems:
            return []
        time.sleep(float(tries["pause_s"]))
    return problems


def verify(options: RunOptions, console: Console, previous_env: str) -> None:
    """After the converge: the monitor's probes and every component's health probe (GET
    /health through Nginx, PHP, MariaDB and Redis); a failure restores the snapshot."""
    session = open_session(options, console)
    with locked(session.target.path(LOCK_FILE)):
        ctx = context(session)
        components = build(session.config, session.facts, session.redactor)
        problems = monitor_problems(components, session.facts)
        problems += [p for p in (probe(ctx) for c in components for probe in c.health) if p]
        if not problems:
            console.say("Health: every service the monitor watches answers, /health is ok")
            return
        directory = last_snapshot(session.target)
        if directory is None:
            raise ApplyError(f"health check failed after the upgrade: {problems[0]}")
        restored = restore(ctx, directory, components)
    tool_back(console, previous_env)
    raise ApplyError(f"health check failed after the upgrade: {problems[0]}. Rolled back: "
                     f"restored {len(restored.paths)} files from {directory}")


def up(options: RunOptions, console: Console, channel: str, mode: str | None, force: bool,
       argv: Sequence[str]) -> Outcome | None:
    """Upgrade to `channel` (`mode` "system": operating-system packages only). Returns the
    converge's outcome (None when nothing was applied); a run with failures has already put
    the previous tool back. `argv` continues the command after a self-update."""
    if mode is not None and mode not in MODES:
        raise UsageError(f'unknown mode "{mode}": the only mode is "system" (operating-system '
                         "packages only)")
    target = Target(options.root)
    config = load(resolve_path(options.config, target.root))
    manifest = load_channel(channel, config, console)
    guard_downgrade(target, manifest, force)
    if mode == "system":
        return run_converge(options, console, f"up-{channel}-system", system_build, channel,
                            prepare=apt_update, record=manifest.record())
    if target.live:
        self_update(options, console, config, manifest, argv)
    previous_env = os.environ.get("BARRACUDA_PREVIOUS_ENV", "")
    here = selfupdate.current_env() if target.live else None
    snapshot = {"tool_env_before": previous_env or str(here or "")}
    try:
        outcome = run_converge(options, console, f"up-{channel}", channel_build(manifest),
                               channel, prepare=apt_update, snapshot=snapshot,
                               record=manifest.record())
    except BarracudaError:
        tool_back(console, previous_env)
        raise
    if outcome is None:
        return None
    if outcome.count("failed"):
        tool_back(console, previous_env)
    elif target.live and outcome.count("changed"):
        verify(options, console, previous_env)
    return outcome


def rollback(options: RunOptions, console: Console, run: str | None = None) -> None:
    """Put back the checkpoint of the newest run (or of `run`) and the tool environment it
    ran from, after saying exactly what that undoes: every file that will change, what will
    be reloaded, where the tool goes back to. A run that was rolled back already is refused
    (an older one is undone only when named). Asks first unless options.yes (raises Declined
    on a no); options.dry_run says what it would undo and stops."""
    if not (options.yes or options.dry_run or console.interactive):
        raise UsageError("not a terminal: pass --yes to roll back")
    session = open_session(options, console)
    target = session.target
    directory = choose(target, run)
    info = run_info(directory)
    with locked(target.path(LOCK_FILE)):
        ctx = context(session)
        components = build(session.config, session.facts, session.redactor)
        plan = preview(ctx, directory, components)
        env = str(info.get("tool_env_before", "")) or str(selfupdate.previous_env() or "")
        switch = target.live and bool(env) and Path(env).is_dir() \
            and Path(env) != selfupdate.current_env()
        what = f" ({info['command']})" if info.get("command") else ""
        console.say(f"Rolling back {directory.name}{what} restores {len(plan.paths)} "
                    f"file{'' if len(plan.paths) == 1 else 's'} as they were before it"
                    + (":" if plan.paths else " (nothing differs from its checkpoint)"))
        for path in plan.paths:
            console.say(f"  {path}")
        if plan.handlers:
            console.say(f"then runs {', '.join(str(h) for h in plan.handlers)}")
        if switch:
            console.say(f"and switches barracuda back to {env}")
        if options.dry_run:
            return
        if not options.yes and not console.confirm("Roll back?"):
            raise Declined("nothing was restored")
        restored = restore(ctx, directory, components)
    shown = listed(restored.paths)
    console.say((f"Restored {shown} from {directory}" if restored.paths
                 else f"Nothing differed from the snapshot in {directory}")
                + (f", then ran {', '.join(str(h) for h in restored.handlers)}"
                   if restored.handlers else ""))
    if switch:
        selfupdate.switch(Path(env))
        console.say(f"barracuda is back at {env}")
    console.say("Packages are not downgraded; the versions in use before that run are in "
                f"{directory}{ROLLED_BACK}/run.json")
