"""`barracuda monitor status|reset` on a --root tree, and the component `barracuda install`
adds: the cron job, and under systemd the Restart=no drop-ins with one daemon-reload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from installer.agents.monitor import state as state_file
from installer.agents.monitor.budget import FAILED, fresh
from installer.data import load_profile
from installer.plan import Component
from installer.resources.files import File
from installer.resources.system import Command, Service
from installer.stack import monitor
from installer.stack.release import Release

PROFILE = load_profile("monitor")


def barracuda(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "BARRACUDA_CONFIG"}
    return subprocess.run([sys.executable, "-m", "installer.cli.barracuda", *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=environ, timeout=60, check=False)


def seed(root: Path) -> Path:
    path = root / PROFILE["state_file"].lstrip("/")
    with state_file.editing(path) as data:
        data["services"]["nginx"] = {**fresh(FAILED), "restarts": [1.0, 2.0, 3.0],
                                     "since": 3.0, "evidence": "no nginx process"}
        data["services"]["redis-server"] = fresh()
        data["checks"] = {"load": "OK", "memory": "OK"}
        data["last_incident"] = {"time": "2026-11-25T10:00:00Z", "check": "service:nginx",
                                 "evidence": "no nginx process", "action": "marked FAILED",
                                 "result": "alert"}
    return path


def test_status_on_a_fresh_tree_says_nothing_ran(tmp_path: Path) -> None:
    result = barracuda("monitor", "status", "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "last run: never" in result.stdout
    assert "services: none checked yet" in result.stdout
    assert "last incident: none" in result.stdout


def test_status_shows_each_state_and_the_last_incident(tmp_path: Path) -> None:
    seed(tmp_path)
    text = barracuda("monitor", "status", "--root", str(tmp_path)).stdout
    assert "nginx            FAILED  restarts in window: 3" in text
    assert "redis-server     OK" in text
    assert "last incident: 2026-11-25T10:00:00Z service:nginx" in text
    report: dict[str, Any] = json.loads(
        barracuda("monitor", "status", "--json", "--root", str(tmp_path)).stdout)
    assert report["services"]["nginx"]["state"] == FAILED
    assert report["shield"]["on"] is False


def test_reset_clears_the_mark_and_refuses_unknown_names(tmp_path: Path) -> None:
    path = seed(tmp_path)
    bad = barracuda("monitor", "reset", "apache2", "--root", str(tmp_path))
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("error: unknown service 'apache2'; the monitor watches: "
                                  "nginx redis-server (or all)")
    ok = barracuda("monitor", "reset", "nginx", "--root", str(tmp_path))
    assert ok.returncode == 0 and ok.stdout == "nginx: FAILED -> reset (budget cleared)\n"
    nginx = state_file.load(path)["services"]["nginx"]
    assert nginx["state"] == "OK" and nginx["restarts"] == []


class FakeFacts:
    def __init__(self, init_system: str) -> None:
        self.init_system = init_system


def components() -> list[Component]:
    return [Component("base", [Service("cron")]), Component("nginx", [Service("nginx")]),
            Component("redis", [Service("redis-server")])]


def test_component_under_systemd_turns_off_restart_for_what_the_monitor_restarts() -> None:
    paths = {k: str(v) for k, v in load_profile("paths").items()}
    built = monitor.component(components(), Release.load("bookworm"), paths,
                              FakeFacts("systemd"))  # type: ignore[arg-type]
    files = {r.path: r for r in built.resources if isinstance(r, File)}
    assert "/etc/cron.d/barracuda-monitor" in files
    cron = files["/etc/cron.d/barracuda-monitor"].content
    assert "* * * * * root barracuda monitor run\n" in cron
    dropins = sorted(p for p in files if p.startswith("/etc/systemd/"))
    assert dropins == [
        "/etc/systemd/system/nginx.service.d/barracuda-monitor.conf",
        "/etc/systemd/system/redis-server.service.d/barracuda-monitor.conf",
    ]  # cron keeps systemd's own Restart=: it is what starts the monitor
    assert "Restart=no" in files[dropins[0]].content
    [reload] = [r for r in built.resources if isinstance(r, Command)]
    assert reload.argv == ["systemctl", "daemon-reload"]
    assert set(reload.requires) == {f"file:{p}" for p in dropins}


def test_component_without_systemd_is_only_the_cron_job() -> None:
    paths = {k: str(v) for k, v in load_profile("paths").items()}
    built = monitor.component(components(), Release.load("bookworm"), paths,
                              FakeFacts("sysv"))  # type: ignore[arg-type]
    assert [r.id for r in built.resources] == ["file:/etc/cron.d/barracuda-monitor"]


def test_install_under_root_writes_the_cron_job_and_converges(tmp_path: Path) -> None:
    first = barracuda("install", "--yes", "--root", str(tmp_path))
    assert first.returncode == 0, first.stderr[-2000:]
    assert (tmp_path / "etc/cron.d/barracuda-monitor").is_file()
    again = barracuda("install", "--yes", "--root", str(tmp_path))
    assert again.stderr.strip().splitlines()[-1].startswith("0 changed, "), again.stderr
