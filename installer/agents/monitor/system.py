"""Machine-wide readings and actions: load per CPU, free memory and disk, the crawler
shield flag, and the runaway PHP CLI jobs to stop under critical load.

The load average counts every runnable task the kernel sees: in a container that is the
host's, so other tenants' work would make the monitor shed this stack's PHP. Where the
kernel offers CPU pressure (PSI) for the cgroup the stack runs in, it decides whose load it
is: `some avg10` is the share of the last 10 s in which at least one of the cgroup's tasks
waited for a CPU. Below the gate (profiles/monitor.yml pressure_gate_pct) the stack's tasks
mostly run when they want to: the load is someone else's and counts as none. At or above
it, the stack is starved and the load average counts as it is. A box measured on a host
at 15 runnable tasks per CPU read 11-40 % while idle, and about 100 % with CPU burners of
its own. Without PSI the load average is used as it is."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import psutil

from installer.agents.monitor.probes import Proc
from installer.fileops import write_atomic

_PHP_CLI = re.compile(r"php\d+(\.\d+)?")
# Jobs started by these are the tool's own work (a site's Drupal cron, an install, a verify):
# they finish or fail on their own terms, never killed midway.
OWN_RUNS = frozenset({"octopus", "barracuda"})


def load_per_cpu(loadavg_file: str, cpus: int) -> tuple[float, float]:
    """(1-minute load average, the same per CPU)."""
    load = float(Path(loadavg_file).read_text().split()[0])
    return load, load / max(1, cpus)


def parse_pressure(text: str) -> float:
    """`some avg10` (%) of a PSI file (cpu.pressure, /proc/pressure/cpu)."""
    for line in text.splitlines():
        kind, *fields = line.split()
        if kind == "some":
            values = dict(field.partition("=")[::2] for field in fields)
            value = float(values["avg10"])
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"avg10={value} is not a percentage")
            return value
    raise ValueError("no 'some' line")


def read_pressure(paths: Iterable[str]) -> tuple[str, float] | None:
    """(file, some avg10 %) from the first of `paths` that holds a PSI reading, or None
    (no PSI: an older kernel, psi=0, no cgroup v2 mounted)."""
    for path in paths:
        try:
            return path, parse_pressure(Path(path).read_text())
        except (OSError, ValueError, KeyError):
            continue
    return None


def cpu_load(loadavg_file: str, cpus: int, pressure_files: Iterable[str],
             gate_pct: float) -> tuple[float, float, str]:
    """(load, load per CPU as the thresholds see it, the evidence in words): the load
    average per CPU, or none when the stack's CPU pressure, where the kernel offers it, is
    below `gate_pct` (the load is not the stack's)."""
    load, ratio = load_per_cpu(loadavg_file, cpus)
    evidence = f"load {load:.2f} on {cpus} CPUs = {ratio:.2f} per CPU"
    pressure = read_pressure(pressure_files)
    if pressure is None:
        return load, ratio, evidence
    path, some = pressure
    if some >= gate_pct:
        return load, ratio, f"{evidence}, CPU pressure {some:.1f} % >= {gate_pct:g} % ({path})"
    return load, 0.0, (f"{evidence}, but CPU pressure {some:.1f} % < {gate_pct:g} % ({path}): "
                       "not this stack's load")


def memory_free_pct() -> float:
    mem = psutil.virtual_memory()
    return 100.0 * mem.available / mem.total if mem.total else 100.0


def existing(path: str) -> Path:
    """`path`, or its nearest existing parent (a backup path not made yet is on that disk)."""
    candidate = Path(path)
    while not candidate.exists() and candidate != candidate.parent:
        candidate = candidate.parent
    return candidate


def disks(paths: Iterable[str]) -> dict[str, float]:
    """Free share (%) of each file system holding one of `paths`, once per device."""
    seen: set[int] = set()
    free: dict[str, float] = {}
    for path in paths:
        real = existing(path)
        device = os.stat(real).st_dev
        if device in seen:
            continue
        seen.add(device)
        usage = psutil.disk_usage(str(real))
        free[path] = 100.0 * usage.free / usage.total if usage.total else 100.0
    return free


def set_flag(path: str, on: bool) -> bool:
    """Create (atomically) or remove the flag file; True when that changed anything."""
    flag = Path(path)
    if on == flag.exists():
        return False
    if on:
        write_atomic(flag, b"barracuda monitor: crawler shield on (high load)\n", mode=0o644)
    else:
        flag.unlink(missing_ok=True)
    return True


def is_runaway_name(name: str, commands: Iterable[str]) -> bool:
    wanted = set(commands)
    return name in wanted or ("php" in wanted and bool(_PHP_CLI.fullmatch(name)))


def ancestors(procs: dict[int, Proc], pid: int) -> set[int]:
    found: set[int] = set()
    while pid in procs and pid not in found:
        found.add(pid)
        pid = procs[pid].ppid
    return found


def runaways(procs: dict[int, Proc], commands: Iterable[str], min_age_s: float,
             now: float) -> list[Proc]:
    """CLI jobs named in `commands`, running at least `min_age_s`, never this process or one
    of its parents, nor a job started by an octopus or barracuda run (site cron)."""
    names = list(commands)
    spared = ancestors(procs, os.getpid())
    return [p for p in procs.values()
            if p.pid not in spared and p.pid > 1 and is_runaway_name(p.name, names)
            and now - p.started >= min_age_s
            and not any(procs[a].name in OWN_RUNS for a in ancestors(procs, p.ppid))]
