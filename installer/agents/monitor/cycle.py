"""One check cycle: read /proc once, probe each service, then act where needed.

When all is well a cycle forks nothing: processes come from psutil, probes are socket
connects. Commands (service starts, sendmail) run only for an action."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from installer.agents.monitor import probes, system
from installer.agents.monitor.budget import DOWN, FAILED, OK, PAUSED, Budget, fresh
from installer.agents.monitor.incidents import Incidents
from installer.agents.monitor.pools import discover
from installer.agents.monitor.probes import Health, Proc
from installer.data import load_profile
from installer.errors import BarracudaError
from installer.services import ServiceManager
from installer.stack import acme
from installer.stack.watched import ServiceSpec
from installer.target import Target

log = logging.getLogger("barracuda.monitor")
CERTIFICATES_S = 3600  # how often the certificates' expiry is read


@dataclass(frozen=True)
class Settings:
    interval: int
    spider: float
    max: float
    crit: float
    runaway_cli: tuple[str, ...]
    budget: Budget
    shield_flag: str
    cpus: int
    soft_failures: int = 2
    timeout: float = 3.0
    hysteresis: float = 0.9
    runaway_min_age_s: float = 10.0
    memory_min_pct: float = 10.0
    disk_min_pct: float = 10.0
    disk_paths: tuple[str, ...] = ("/",)
    loadavg_file: str = "/proc/loadavg"
    pressure_files: tuple[str, ...] = ()
    pressure_gate_pct: float = 60.0


@dataclass
class Monitor:
    specs: list[ServiceSpec]
    settings: Settings
    services: ServiceManager
    incidents: Incidents
    may_act: Callable[[], bool] = lambda: True  # False while the installer holds its lock
    clock: Callable[[], float] = time.time
    rand: Callable[[], float] = random.random
    snapshot: Callable[[], dict[int, Proc]] = probes.snapshot
    probe: Callable[[ServiceSpec, dict[int, Proc]], Health] | None = None
    read_load: Callable[[], tuple[float, float]] | None = None
    kill: Callable[[int, int], None] = os.kill
    settle: Callable[[list[int]], None] = lambda pids: _wait_gone(pids, 5.0)
    rebaseline: bool = False  # after standing aside: take new masters as they are
    root: Target = field(default_factory=Target)  # where the certificates are read
    actions: list[str] = field(default_factory=list)  # what this cycle did (for tests)

    # ------------------------------------------------------------------ the cycle

    def cycle(self, state: dict[str, Any]) -> None:
        self.actions = []
        procs = self.snapshot()
        self._load(state, procs)
        for spec in self.specs:
            self._service(state, spec, procs)
        self._memory(state)
        self._disks(state)
        self._certificates(state)
        self.rebaseline = False

    def _probe(self, spec: ServiceSpec, procs: dict[int, Proc]) -> Health:
        if self.probe is not None:
            return self.probe(spec, procs)
        if not spec.probed:
            running = self.services.is_running(spec.name)
            return Health(running, "" if running else "the service manager reports it stopped",
                          hard=True)
        return probes.check(spec, procs, self.settings.timeout)

    def _record(self, state: dict[str, Any], check: str, evidence: str, action: str,
                result: str, **kind: bool) -> None:
        self.incidents.record(state, self.clock(), check, evidence, action, result, **kind)
        self.actions.append(f"{check}: {action}")

    # ------------------------------------------------------------------ services

    def _service(self, state: dict[str, Any], spec: ServiceSpec,
                 procs: dict[int, Proc]) -> None:
        rec: dict[str, Any] = state["services"].setdefault(spec.name, fresh())
        if rec["state"] == PAUSED:
            return  # shed under high load: started again when the load falls
        now = self.clock()
        health = self._probe(spec, procs)
        check = f"service:{spec.name}"
        if health.ok:
            self._healthy(state, spec, rec, health, now)
            return
        rec["evidence"] = health.evidence
        if rec["state"] == FAILED:
            return  # no more restarts, the alert went once
        if health.supervised:
            since = rec.setdefault("supervised_since", now)
            if now - float(since) < spec.start_s:
                return  # its supervisor gets its start time; a second start would race it
        if not health.hard:
            rec["soft"] = int(rec.get("soft", 0)) + 1
            if rec["soft"] < self.settings.soft_failures or now < float(rec.get("grace", 0)):
                return
        decision = self.settings.budget.decide(rec, now)
        if decision == "wait":
            self._set(rec, DOWN, now)
            return
        if decision == "fail":
            self._set(rec, FAILED, now)
            budget = self.settings.budget
            self._record(state, check, health.evidence,
                         f"marked FAILED: {len(budget.recent(rec, now))} restarts within "
                         f"{budget.window_s:.0f} s spent the budget; no more restarts until it "
                         f"is healthy or `barracuda monitor reset {spec.name}`",
                         "alert", alert=True)
            return
        if not self.may_act():
            return
        self._restart(state, spec, rec, health, procs)

    def _set(self, rec: dict[str, Any], new: str, now: float) -> None:
        if rec["state"] != new:
            rec["state"] = new
            rec["since"] = now

    def _healthy(self, state: dict[str, Any], spec: ServiceSpec, rec: dict[str, Any],
                 health: Health, now: float) -> None:
        master = [health.masters[0].pid, health.masters[0].started] if health.masters else None
        check = f"service:{spec.name}"
        if rec["state"] in (DOWN, FAILED):
            restarts = len(rec.get("restarts", []))
            self._record(state, check, f"healthy again: {health.evidence}", "none",
                         f"{OK} after {restarts} restart(s) by the monitor", recovery=True)
            self._set(rec, OK, now)
        elif (rec.get("master") and master and master != rec["master"]
              and not self.rebaseline):
            self._record(state, check,
                         f"master PID {rec['master'][0]} was replaced by PID {master[0]} "
                         "(restarted outside the monitor)", "none", "serving")
        rec["master"] = master
        rec["soft"] = 0
        rec.pop("supervised_since", None)
        rec["evidence"] = ""
        self._set(rec, OK, now)
        self.settings.budget.healthy(rec, now)

    def _restart(self, state: dict[str, Any], spec: ServiceSpec, rec: dict[str, Any],
                 health: Health, procs: dict[int, Proc]) -> None:
        started = time.monotonic()
        escalate = bool(self.settings.budget.recent(rec, self.clock()))
        cleared: list[str] = []
        if spec.probed and (health.hard or escalate):
            cleared = self._clear(spec, procs)
        verb = "restart" if health.masters and not cleared else "start"
        error = ""
        try:
            if verb == "restart":
                self.services.restart(spec.name)
            else:
                self.services.start(spec.name)
        except BarracudaError as exc:
            error = str(exc)
        after = None if error else self._wait_serving(spec)
        took = time.monotonic() - started
        now = self.clock()
        self.settings.budget.restarted(rec, now, self.rand)
        rec["grace"] = now + spec.start_s
        rec["soft"] = 0
        if after is not None and after.ok:
            result = f"serving again after {took:.1f} s"
            self._set(rec, OK, now)
            rec["master"] = ([after.masters[0].pid, after.masters[0].started]
                             if after.masters else None)
        else:
            result = (f"start failed: {error}" if error else
                      f"started in {took:.1f} s, not serving yet: "
                      f"{after.evidence if after else ''}")
            self._set(rec, DOWN, now)
        budget = self.settings.budget
        action = (f"{'; '.join(cleared)}; " if cleared else "") + (
            f"{verb} {spec.name} ({len(budget.recent(rec, now))}/{budget.max_restarts} "
            f"within {budget.window_s:.0f} s)")
        self._record(state, f"service:{spec.name}", health.evidence, action, result)

    def _wait_serving(self, spec: ServiceSpec) -> Health:
        """Probe a started service until it serves, for at most its start time."""
        deadline = time.monotonic() + spec.start_s
        while True:
            health = self._probe(spec, self.snapshot())
            if health.ok or time.monotonic() >= deadline:
                return health
            time.sleep(0.25)

    def _clear(self, spec: ServiceSpec, procs: dict[int, Proc]) -> list[str]:
        """Before a start: kill what a dead or duplicated master left behind, then remove a
        pid file naming no live process and sockets nobody listens on."""
        done: list[str] = []
        if spec.kill_leftovers:
            spared = system.ancestors(procs, os.getpid())
            names = [spec.process, *([spec.supervisor] if spec.supervisor else [])]
            leftovers = [p for name in names for p in probes.named(procs, name)
                         if p.pid not in spared]
            for proc in leftovers:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    self.kill(proc.pid, signal.SIGKILL)
            if leftovers:
                self.settle([p.pid for p in leftovers])
                done.append(f"killed {len(leftovers)} leftover {'/'.join(names)} process(es) "
                            f"(PIDs {' '.join(str(p.pid) for p in leftovers)})")
        if spec.pidfile and _stale_pidfile(spec.pidfile, spec.process):
            Path(spec.pidfile).unlink(missing_ok=True)
            done.append(f"removed stale {spec.pidfile}")
        sockets = [spec.socket] if spec.socket else []
        if spec.pools:
            sockets += [p.listen for p in discover(spec.pools) if p.listen.startswith("/")]
        for path in sockets:
            if _stale_socket(path):
                Path(path).unlink(missing_ok=True)
                done.append(f"removed stale socket {path}")
        return done

    # ------------------------------------------------------------------ load

    def _load(self, state: dict[str, Any], procs: dict[int, Proc]) -> None:
        s = self.settings
        if self.read_load is not None:
            load, ratio = self.read_load()
            evidence = f"load {load:.2f} on {s.cpus} CPUs = {ratio:.2f} per CPU"
        else:
            load, ratio, evidence = system.cpu_load(s.loadavg_file, s.cpus, s.pressure_files,
                                                    s.pressure_gate_pct)
        checks: dict[str, Any] = state["checks"]
        level = ("CRIT" if ratio > s.crit else "MAX" if ratio > s.max
                 else "SPIDER" if ratio > s.spider else OK)
        if checks.get("load") != level:
            checks["load"] = level
        if not self.may_act():
            return
        shield = Path(s.shield_flag).exists()
        if ratio > s.spider and not shield:
            system.set_flag(s.shield_flag, True)
            self._record(state, "load:spider", f"{evidence} > _CPU_SPIDER_RATIO {s.spider}",
                         f"crawler shield on: created {s.shield_flag}", "crawlers get 503")
        elif shield and ratio < s.spider * s.hysteresis:
            system.set_flag(s.shield_flag, False)
            self._record(state, "load:spider", f"{evidence} < {s.hysteresis} x "
                         f"_CPU_SPIDER_RATIO {s.spider}",
                         f"crawler shield off: removed {s.shield_flag}", "crawlers served",
                         recovery=True)
        php = [spec for spec in self.specs if spec.key == "php"]
        shed = bool(checks.get("shed"))
        if ratio > s.max and not shed:
            self._shed(state, php, evidence, on=True)
        elif shed and ratio < s.max * s.hysteresis:
            self._shed(state, php, evidence, on=False)
        if ratio > s.crit:
            self._stop_runaways(state, procs, evidence)

    def _shed(self, state: dict[str, Any], php: list[ServiceSpec], evidence: str,
              on: bool) -> None:
        """Above _CPU_MAX_RATIO PHP-FPM is stopped (BOA pauses the web server); it starts
        again when the load falls."""
        s = self.settings
        done, failed = [], []
        for spec in php:
            rec = state["services"].setdefault(spec.name, fresh())
            try:
                if on:
                    self.services.stop(spec.name)
                    self._set(rec, PAUSED, self.clock())
                else:
                    self.services.start(spec.name)
                    state["services"][spec.name] = fresh()
                done.append(spec.name)
            except BarracudaError as exc:
                failed.append(f"{spec.name}: {exc}")
                if not on:
                    state["services"][spec.name] = fresh()  # the service checks take over
        state["checks"]["shed"] = on
        names = " ".join(done) or "nothing"
        result = "; ".join(failed) or ("PHP requests get 502 until the load falls" if on
                                       else "PHP serving again")
        if on:
            self._record(state, "load:max", f"{evidence} > _CPU_MAX_RATIO {s.max}",
                         f"PHP shed: stopped {names}", result)
        else:
            self._record(state, "load:max", f"{evidence} < {s.hysteresis} x _CPU_MAX_RATIO "
                         f"{s.max}", f"PHP resumed: started {names}", result, recovery=True)

    def _stop_runaways(self, state: dict[str, Any], procs: dict[int, Proc],
                       evidence: str) -> None:
        s = self.settings
        found = system.runaways(procs, s.runaway_cli, s.runaway_min_age_s, self.clock())
        killed = []
        for proc in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                self.kill(proc.pid, signal.SIGKILL)
                killed.append(f"{proc.name}[{proc.pid}]")
        if killed:
            self._record(state, "load:crit", f"{evidence} > _CPU_CRIT_RATIO {s.crit}",
                         f"killed runaway CLI jobs: {' '.join(killed)}",
                         f"{len(killed)} stopped")

    # ------------------------------------------------------------------ memory and disk

    def _memory(self, state: dict[str, Any]) -> None:
        pct = system.memory_free_pct()
        self._threshold(state, "memory", pct, self.settings.memory_min_pct, "memory available")

    def _disks(self, state: dict[str, Any]) -> None:
        for path, pct in system.disks(self.settings.disk_paths).items():
            self._threshold(state, f"disk:{path}", pct, self.settings.disk_min_pct,
                            f"free on the file system of {path}")

    def _certificates(self, state: dict[str, Any]) -> None:
        """Let's Encrypt certificates that expire within acme.yml's alert_days: an alert
        once (their renewal failed for two weeks), read at most every CERTIFICATES_S."""
        now = self.clock()
        if now - float(state.get("certificates_read", 0)) < CERTIFICATES_S:
            return
        state["certificates_read"] = now
        directory = str(load_profile("paths")["letsencrypt_dir"])
        soon = dict(acme.expiring(self.incidents.runner, self.root, directory, now))
        checks: dict[str, Any] = state["checks"]
        for name in acme.lineages(self.root, directory):
            check, expiring = f"certificate:{name}", name in soon
            if expiring == (checks.get(check) == "EXPIRING"):
                checks.setdefault(check, OK)
                continue
            checks[check] = "EXPIRING" if expiring else OK
            if expiring:
                self._record(state, check, f"expires {soon[name]}", "alert",
                             "needs an operator (its renewal keeps failing)")

    def _threshold(self, state: dict[str, Any], check: str, pct: float, minimum: float,
                   what: str) -> None:
        checks: dict[str, Any] = state["checks"]
        low = pct < minimum
        was = checks.get(check) == "LOW"
        if low == was:
            if check not in checks:
                checks[check] = OK
            return
        checks[check] = "LOW" if low else OK
        if low:
            self._record(state, check, f"{pct:.1f}% {what} < {minimum:.0f}%", "alert",
                         "needs an operator")
        else:
            self._record(state, check, f"{pct:.1f}% {what} >= {minimum:.0f}%", "none",
                         OK, recovery=True)


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(psutil.pid_exists(p) and _alive(p) for p in pids):
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _stale_pidfile(path: str, process: str) -> bool:
    try:
        pid = int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return Path(path).exists()
    try:
        return psutil.Process(pid).name() != process
    except psutil.Error:
        return True


def _stale_socket(path: str) -> bool:
    if not Path(path).is_socket():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(1.0)
        try:
            conn.connect(path)
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
    return False
