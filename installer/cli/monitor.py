"""`barracuda monitor`: the self-healing monitor's run (cron), status and reset."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import typer

from installer.agents.monitor import state as state_file
from installer.agents.monitor.budget import fresh
from installer.agents.monitor.incidents import stamp
from installer.agents.monitor.run import (
    Loop,
    incidents_for,
    make_monitor,
    monitor_lock,
    profile,
    run_until,
    service_specs,
    settings_for,
    start_log,
)
from installer.cli import options as opt
from installer.cli.app import application
from installer.config import load, resolve_path
from installer.data import load_profile
from installer.errors import BarracudaError, UsageError
from installer.facts import Facts
from installer.lock import LOCK_FILE, is_held
from installer.runlog import Redactor
from installer.runner import SubprocessRunner
from installer.services import manager_for
from installer.stack import build
from installer.target import Target

app = typer.Typer(no_args_is_help=True,
                  help="The self-healing monitor: run (from cron), status, reset.")
log = logging.getLogger("barracuda.monitor")
SERVICE_ARG = typer.Argument(..., help="A watched service (as `monitor status` lists it), or all.")
ONCE = typer.Option(False, "--once", help="Run one check cycle, then exit.")


@app.command(cls=opt.takes("config"))
def run(ctx: typer.Context, once: bool = ONCE) -> None:
    """Check and heal until just before the next minute (cron starts this every minute)."""
    config = application(ctx).config
    if os.geteuid() != 0:
        raise UsageError("the monitor runs as root (cron starts it from /etc/cron.d)")
    target = Target()
    prof = profile()
    loaded = load(resolve_path(config, target.root))
    runner = SubprocessRunner()
    facts = Facts(target, runner)
    manager = manager_for(facts.init_system, runner, target)
    if manager is None:
        raise UsageError("the monitor runs on a live machine only")
    specs = service_specs(build(loaded, facts, Redactor()), facts, prof)
    settings = settings_for(loaded, facts, prof)
    start_log(prof)
    with monitor_lock(Path(prof["lock_file"]), wait=float(settings.interval)) as held:
        if not held:
            log.info("another monitor run holds %s: this one ends", prof["lock_file"])
            return
        monitor = make_monitor(specs, settings, manager, incidents_for(loaded, runner, prof))
        loop = Loop(monitor, Path(prof["state_file"]), float(settings.interval),
                    run_until(time.time(), float(prof.get("run_seconds", 57))))
        try:
            loop.run(once=once)
        except BarracudaError as exc:
            log.error("monitor run failed: %s", exc)
            raise
        except Exception:
            log.exception("monitor run failed")
            raise


def _ago(then: float, now: float) -> str:
    seconds = max(0, int(now - then))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def _report(root: Path) -> dict[str, Any]:
    prof = profile()
    target = Target(root)
    data = state_file.load(target.path(prof["state_file"]))
    cron = target.path(f"/etc/cron.d/{prof['cron_name']}")
    lock = target.path(prof["lock_file"])
    shield = str(load_profile("paths")["shield_flag"])
    return {
        "cron": {"path": str(cron), "present": cron.is_file()},
        "running": is_held(lock),
        "installer_lock_held": is_held(target.path(LOCK_FILE)),
        "last_run": data.get("last_run"),
        "services": data.get("services", {}),
        "checks": data.get("checks", {}),
        "last_incident": data.get("last_incident"),
        "shield": {"path": shield, "on": target.path(shield).exists()},
    }


@app.command(cls=opt.takes("json", "root"))
def status(ctx: typer.Context) -> None:
    """Each check's state and the last incident."""
    this = application(ctx)
    report = _report(this.root)
    if this.json:
        this.emit_json(report)
        return
    now = time.time()
    last = report["last_run"]
    print(f"cron job: {report['cron']['path']}" + ("" if report["cron"]["present"]
                                                    else " (missing)"))
    print("last run: " + (f"{stamp(last['time'])} ({_ago(last['time'], now)}), "
                          f"{last['cycles']} cycles every {last['interval']:.0f} s"
                          if last else "never") + (", running now" if report["running"] else ""))
    if report["installer_lock_held"]:
        print("the installer lock is held: the monitor stands aside")
    print("services:" + ("" if report["services"] else " none checked yet"))
    for name, rec in sorted(report["services"].items()):
        restarts = len(rec.get("restarts", []))
        line = f"  {name:<16} {rec.get('state', '?'):<7} restarts in window: {restarts}"
        if rec.get("state") != "OK" and rec.get("since"):
            line += f", since {stamp(rec['since'])}"
        if rec.get("evidence"):
            line += f": {rec['evidence']}"
        print(line)
    print("checks:" + ("" if report["checks"] else " none yet"))
    for name, value in sorted(report["checks"].items()):
        shown = {True: "ON", False: "off"}.get(value, value) if isinstance(value, bool) else value
        print(f"  {name:<16} {shown}")
    print(f"crawler shield: {'ON' if report['shield']['on'] else 'off'} "
          f"({report['shield']['path']})")
    incident = report["last_incident"]
    if incident:
        print(f"last incident: {incident['time']} {incident['check']}: {incident['evidence']}"
              f" -> {incident['action']} ({incident['result']})")
    else:
        print("last incident: none")


@app.command(cls=opt.takes("root"))
def reset(ctx: typer.Context, service: str = SERVICE_ARG) -> None:
    """Clear a service's restart budget and FAILED mark: the monitor restarts it at its
    next cycle if it is still down."""
    prof = profile()
    path = Target(application(ctx).root).path(prof["state_file"])
    try:
        _reset(path, service)
    except PermissionError as exc:
        raise UsageError(f"{exc.filename or path}: {exc.strerror}; run as root") from None


def _reset(path: Path, service: str) -> None:
    with state_file.editing(path) as data:
        known = sorted(data["services"])
        if service == "all":
            names = known
        elif service in data["services"]:
            names = [service]
        else:
            raise UsageError(f"unknown service {service!r}; the monitor watches: "
                             f"{' '.join(known) or 'nothing yet'} (or all)")
        for name in names:
            was = data["services"][name].get("state", "?")
            data["services"][name] = fresh()
            print(f"{name}: {was} -> reset (budget cleared)")
