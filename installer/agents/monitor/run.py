"""A monitor run: cron starts one each minute; it holds its own lock (two never overlap),
loops until just before the next minute with one cycle every _MONITOR_INTERVAL seconds, and
stands aside (touches nothing) while an install or upgrade holds the installer lock."""

from __future__ import annotations

import logging
import logging.handlers
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from installer.agents.monitor import state as state_file
from installer.agents.monitor.budget import Budget
from installer.agents.monitor.cycle import Monitor, Settings
from installer.agents.monitor.incidents import Incidents
from installer.config import Config
from installer.data import load_profile
from installer.facts import Facts
from installer.lock import LOCK_FILE, holding, is_held
from installer.plan import Component
from installer.runlog import log_to
from installer.runner import Runner
from installer.services import ServiceManager
from installer.stack.release import Release
from installer.stack.watched import ServiceSpec, specs_for

log = logging.getLogger("barracuda.monitor")


def profile() -> dict[str, Any]:
    return load_profile("monitor")


def settings_for(config: Config, facts: Facts, prof: dict[str, Any]) -> Settings:
    paths = load_profile("paths")
    return Settings(
        interval=int(config["_MONITOR_INTERVAL"]),
        spider=float(config["_CPU_SPIDER_RATIO"]),
        max=float(config["_CPU_MAX_RATIO"]),
        crit=float(config["_CPU_CRIT_RATIO"]),
        runaway_cli=tuple(str(config["_MONITOR_RUNAWAY_CLI"]).split()),
        budget=Budget.from_profile(prof, int(config["_MONITOR_RESTARTS"]),
                                   float(config["_MONITOR_RESTART_WINDOW"])),
        shield_flag=str(paths["shield_flag"]),
        cpus=facts.cpus,
        soft_failures=int(prof.get("soft_failures", 2)),
        timeout=float(prof.get("probe_timeout_s", 3)),
        hysteresis=float(prof.get("hysteresis", 0.9)),
        runaway_min_age_s=float(prof.get("runaway_min_age_s", 10)),
        memory_min_pct=float(prof.get("memory_min_free_pct", 10)),
        disk_min_pct=float(prof.get("disk_min_free_pct", 10)),
        disk_paths=tuple(str(p) for p in prof.get("disk_paths", ["/"])),
        loadavg_file=str(prof.get("loadavg_file", "/proc/loadavg")),
        pressure_files=tuple(str(p) for p in prof.get("pressure_files", [])),
        pressure_gate_pct=float(prof.get("pressure_gate_pct", 60)),
    )


def service_specs(components: list[Component], facts: Facts,
                  prof: dict[str, Any]) -> list[ServiceSpec]:
    paths = {k: str(v) for k, v in load_profile("paths").items()}
    return specs_for(components, Release.load(facts.distro.codename), prof, paths)


def incidents_for(config: Config, runner: Runner, prof: dict[str, Any]) -> Incidents:
    return Incidents(Path(prof["incidents_log"]), runner, email=str(config["_MY_EMAIL"]),
                     report=str(config["_INCIDENT_EMAIL_REPORT"]),
                     sendmail=str(prof.get("sendmail", "/usr/sbin/sendmail")),
                     min_interval_s=float(prof.get("mail_min_interval_s", 900)))


def start_log(prof: dict[str, Any]) -> None:
    """The monitor's one small rotating log (no log per run)."""
    path = Path(prof["log_file"])
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=int(prof.get("log_max_bytes", 1 << 20)),
        backupCount=int(prof.get("log_backups", 3)), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log_to(handler, logging.INFO)


def monitor_lock(path: Path, wait: float) -> AbstractContextManager[bool]:
    """True when this run holds the monitor lock (waiting up to `wait` seconds for the
    previous run to finish), False when another run still has it."""
    return holding(path, wait)


def installer_busy() -> bool:
    return is_held(Path(LOCK_FILE))


@dataclass
class Loop:
    """The cycles of one run, at start + k * interval, none starting after `until`."""

    monitor: Monitor
    state_path: Path
    interval: float
    until: float  # time.time() after which no cycle starts
    busy: Callable[[], bool] = installer_busy
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    def run(self, once: bool = False) -> int:
        """Run the cycles; returns how many ran (cycles skipped for the installer excluded)."""
        start = self.clock()
        ran = 0
        standing_aside = False
        k = 0
        while True:
            due = start + k * self.interval
            if k and (once or due > self.until):
                break
            k += 1
            delay = due - self.clock()
            if delay > 0:
                self.sleep(delay)
            if self.busy():
                if not standing_aside:
                    log.info("the installer lock is held: standing aside")
                standing_aside = True
                continue
            if standing_aside:
                log.info("the installer lock is free again: checks resume")
                self.monitor.rebaseline = True
                standing_aside = False
            with state_file.editing(self.state_path) as data:
                try:
                    self.monitor.cycle(data)
                except Exception:  # one bad cycle must not end the watch for the minute
                    log.exception("check cycle failed")
            ran += 1
        with state_file.editing(self.state_path) as data:
            data["last_run"] = {"time": self.clock(), "cycles": ran,
                                "interval": self.interval, "pid": os.getpid()}
        return ran


def run_until(now: float, run_seconds: float) -> float:
    """The last moment a cycle may start: `run_seconds` into the minute the run began in
    (cron starts the next run at the next minute)."""
    minute = now - (now % 60)
    return max(now, minute + run_seconds)


def make_monitor(specs: list[ServiceSpec], settings: Settings, manager: ServiceManager,
                 incidents: Incidents) -> Monitor:
    return Monitor(specs, settings, manager, incidents,
                   may_act=lambda: not installer_busy())
