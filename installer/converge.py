"""A converge run, shared by install and every upgrade command:
config + facts -> components -> plan -> (dry run | check | apply) -> summary.

It knows no terminal: the caller passes the run's options (RunOptions) and a Console that
says, warns, shows the plan, asks; a pending change under --check and a "no" to the
question are typed errors (ChangesPending, Declined) the caller turns into exit codes."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from installer import __version__
from installer.apply import Applier, Outcome
from installer.apply import Result as StepResult
from installer.checkpoint import CHECKPOINTS, Checkpoint, prune
from installer.config import Config, load, resolve_path
from installer.config.xtras import select
from installer.data import load_profile
from installer.errors import (
    BarracudaError,
    ChangesPending,
    Declined,
    PreflightError,
    RollbackError,
    UsageError,
)
from installer.facts import Facts
from installer.lock import LOCK_FILE, locked
from installer.plan import Builder, Component, Plan, make_plan
from installer.resources.base import Context
from installer.runlog import Redactor, append_versions, start_run_log
from installer.runner import SubprocessRunner
from installer.runoptions import RunOptions as RunOptions  # re-exported: its old home
from installer.services import manager_for
from installer.stack.release import Release
from installer.state import ManagedState
from installer.target import Target

log = logging.getLogger("barracuda")

# Runs under the lock before the plan (e.g. apt-get update); returns a warning or None.
Prepare = Callable[[Context], str | None]
RUN_FILE = "run.json"  # in a checkpoint: what the run was, the versions before it
ROLLED_BACK = ".rolled-back"  # suffix of a checkpoint already put back
SNAPSHOT_DIR = "snapshot"  # in a checkpoint: every managed file before an upgrade


class Console(Protocol):
    """Where a run reports to; the CLI implements it on the terminal."""

    @property
    def interactive(self) -> bool:
        """Whether confirm() can ask someone (a terminal is attached)."""
        ...

    def say(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def show_plan(self, plan: Plan) -> None: ...

    def progress(self, index: int, total: int, result: StepResult) -> None: ...

    def emit_json(self, payload: dict[str, Any]) -> None: ...

    def confirm(self, question: str) -> bool: ...


@dataclass
class Session:
    """What a command needs before it builds anything: target, config, facts."""

    options: RunOptions
    target: Target
    config: Config
    facts: Facts
    runner: SubprocessRunner
    redactor: Redactor


def open_session(options: RunOptions, console: Console) -> Session:
    """Read the configuration (a ConfigError here changes nothing) and set up facts."""
    target = Target(options.root)
    if not target.live and not options.root.is_dir():
        raise UsageError(f"--root {options.root}: "
                         + ("not a directory" if options.root.exists() else "does not exist"))
    config = load(resolve_path(options.config, target.root))
    runner = SubprocessRunner()
    facts = Facts(target, runner)
    if config.ignored:
        console.warn(f"{config.path}: BOA keys barracuda does not use (ignored): "
                 f"{' '.join(config.ignored)}")
    for warning in select(config["_XTRAS_LIST"], facts.distro.codename).warnings:
        console.warn(f"_XTRAS_LIST: {warning}")
    return Session(options, target, config, facts, runner, Redactor())


def preflight(session: Session) -> None:
    """Checks before any change; a failure is one clear message and nothing is changed."""
    Release.load(session.facts.distro.codename)  # an unsupported release stops here
    minimum = int(load_profile("base")["preflight"]["min_free_mib"])
    probe = session.target.root
    free = shutil.disk_usage(probe).free // (1024 * 1024)
    if free < minimum:
        raise PreflightError(f"only {free} MiB free on {probe}; a run needs {minimum} MiB")
    if session.target.live:
        _check_dpkg_lock()


def _check_dpkg_lock() -> None:
    import fcntl
    import os

    for lock in ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"):
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(fd, fcntl.LOCK_UN)
        except OSError:
            raise PreflightError(
                f"{lock} is held: another apt or dpkg is running; try again when it is done"
            ) from None
        finally:
            os.close(fd)


def held_packages(session: Session, components: list[Component]) -> None:
    """Preflight: a package the run installs or upgrades must not be held (apt-mark hold)."""
    if not session.target.live:
        return
    wanted: set[str] = set()
    for component in components:
        for resource in component.resources:
            wanted.update(getattr(resource, "packages", []) or [])
    result = session.runner.run(["apt-mark", "showhold"], check=False, timeout=60)
    held = sorted(wanted & set(result.stdout.split()))
    if held:
        raise PreflightError(f"held packages: {' '.join(held)}; barracuda manages them: "
                             f"`apt-mark unhold {' '.join(held)}`, then run again")


def component_preflight(components: list[Component], ctx: Context) -> None:
    """Each component's own checks (e.g. the live Nginx tree must pass nginx -t)."""
    for component in components:
        for check in component.preflight:
            problem = check(ctx)
            if problem:
                raise PreflightError(problem)


def snapshot_all(ctx: Context, directory: Path, before: dict[str, object]) -> None:
    """Save every managed file (not only those the run replaces) and the versions in use
    beside the run's checkpoint (in its snapshot/ folder), so `barracuda rollback` can put
    the whole configuration back. The run's own checkpoint keeps only what it replaces: a
    failed run restores (and names) just those."""
    from installer.state import STATE_FILE

    snapshot = Checkpoint(ctx.target, directory / SNAPSHOT_DIR)
    snapshot.save(STATE_FILE)
    for path in sorted(ctx.state.hashes):
        snapshot.save(path)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / RUN_FILE).write_text(json.dumps(before, indent=1, sort_keys=True) + "\n")


def run_converge(options: RunOptions, console: Console, command: str, build: Builder,
                 channel: str = "stable", *, prepare: Prepare | None = None,
                 snapshot: dict[str, str] | None = None,
                 record: dict[str, str] | None = None) -> Outcome | None:
    """Plan and (unless --dry-run/--check) apply. Returns None when nothing was applied;
    raises ChangesPending (--check with changes to make) and Declined (the operator said no).

    Upgrades pass `prepare` (run under the lock before the plan), `snapshot` (checkpoint
    every managed file and the versions in use first, with these fields in its run.json;
    kept only when the run changed something) and `record` (more fields for versions.log)."""
    if not (options.yes or options.dry_run or options.check or console.interactive):
        raise UsageError("not a terminal: pass --yes to apply changes (or --dry-run to see them)")
    session = open_session(options, console)
    preflight(session)
    target = session.target
    components = build(session.config, session.facts, session.redactor)
    held_packages(session, components)
    if options.dry_run:
        plan = make_plan(components, context(session))
        if options.json:
            console.emit_json({"plan": plan.as_dict(), "pending": len(plan.pending)})
        console.show_plan(plan)
        return None
    with locked(target.path(LOCK_FILE)):
        logfile = start_run_log(target, command, session.redactor,
                                int(load_profile("base")["keep_run_logs"]))
        log.info("barracuda %s %s on %s, root %s", __version__, command, session.facts.distro,
                 target.root)
        ctx = context(session)
        component_preflight(components, ctx)
        if prepare is not None and not options.check:
            warning = prepare(ctx)
            if warning:
                console.warn(warning)
        plan = make_plan(components, ctx)
        if options.check:
            console.show_plan(plan)
            if options.json:
                console.emit_json({"plan": plan.as_dict(), "pending": len(plan.pending)})
            if plan.pending:
                raise ChangesPending(f"{len(plan.pending)} changes pending")
            return None
        if plan.pending and not options.yes:
            console.show_plan(plan)
            if not console.confirm("Apply these changes?"):
                raise Declined("nothing was changed")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        directory = target.path(CHECKPOINTS) / f"{stamp}-{command}"
        suffix = 1
        while directory.exists() or directory.with_name(directory.name + ROLLED_BACK).exists():
            suffix += 1
            directory = target.path(CHECKPOINTS) / f"{stamp}-{command}-{suffix}"
        checkpoint = Checkpoint(target, directory)
        if snapshot is not None:
            snapshot_all(ctx, directory, {"command": command, "channel": channel,
                                           "versions": _versions(session, channel),
                                           **(record or {}), **snapshot})
        try:
            outcome = Applier(ctx, checkpoint, console.progress).run(components)
        except RollbackError:
            raise  # not put back whole: its checkpoint stays as it is, for a rollback
        except BarracudaError:
            if directory.is_dir():  # the Applier put it back: nothing of it to roll back
                directory.rename(directory.with_name(directory.name + ROLLED_BACK))
            raise
        ctx.state.save()
        if snapshot is not None and not outcome.count("changed"):
            shutil.rmtree(checkpoint.directory, ignore_errors=True)  # nothing to go back to
        prune(target, int(load_profile("base")["keep_checkpoints"]))
        append_versions(target, {**_versions(session, channel), **(record or {})},
                        changed=outcome.count("changed") > 0)
        for note in ctx.notes:
            console.warn(note)
        planned_only = outcome.count("skipped")
        if planned_only:
            console.say(f"{planned_only} planned only: packages, services and commands are "
                        "not executed under --root")
        log.info("%s", outcome.summary())
        console.say(f"Log: {logfile}")
        if options.json:
            console.emit_json({"results": [r.as_dict() for r in outcome.results],
                               "summary": outcome.summary(), "log": str(logfile)})
        console.say(outcome.summary())
        return outcome


def context(session: Session) -> Context:
    """The engine's context for a run of this session (under the lock, but for a dry run)."""
    target = session.target
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Context(
        target=target,
        runner=session.runner,
        facts=session.facts,
        services=manager_for(session.facts.init_system, session.runner, target),
        state=ManagedState.load(target),
        backup_dir=target.path("/var/backups/barracuda/moved") / stamp,
        keep_local_edits=session.options.keep_local_edits,
    )


def _versions(session: Session, channel: str) -> dict[str, str]:
    fields = {"barracuda": __version__, "channel": channel,
              "distro": f"{session.facts.distro.id}-{session.facts.distro.version}"}
    session.facts.forget_packages()
    installed = session.facts.packages()
    for name in Release.load(session.facts.distro.codename).versions_of:
        if name in installed:
            fields[name] = installed[name]
    return fields
