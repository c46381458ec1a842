"""The monitor's load reading: below a gate, the CPU pressure (PSI) of the stack's cgroup
says the load average is not the stack's, so a host busy with other work does not make a
container's stack shed; without PSI the load average is used as it is
(installer/agents/monitor/system.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.agents.monitor import state as state_file
from installer.agents.monitor import system
from installer.data import load_profile
from tests.unit.test_monitor import FakeManager, World, make_monitor

# What a cgroup's cpu.pressure looks like (kernel 5.13+ also has the `full` line).
PSI = ("some avg10={some:.2f} avg60=12.50 avg300=3.10 total=123456\n"
       "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")


def test_parse_pressure_reads_some_avg10() -> None:
    assert system.parse_pressure(PSI.format(some=42.5)) == 42.5
    assert system.parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n") == 0.0


@pytest.mark.parametrize("text", ["", "full avg10=1.00\n", "some avg60=1.00 total=3\n",
                                  "some avg10=abc\n", "some avg10=120.00\n"])
def test_parse_pressure_refuses_what_is_not_a_reading(text: str) -> None:
    with pytest.raises((ValueError, KeyError)):
        system.parse_pressure(text)


def test_read_pressure_takes_the_first_file_with_a_reading(tmp_path: Path) -> None:
    broken, good = tmp_path / "broken", tmp_path / "good"
    broken.write_text("garbage\n")
    good.write_text(PSI.format(some=7.0))
    found = system.read_pressure([str(tmp_path / "missing"), str(broken), str(good)])
    assert found == (str(good), 7.0)
    assert system.read_pressure([str(tmp_path / "missing"), str(broken)]) is None


def loadavg(tmp_path: Path, load: float) -> str:
    path = tmp_path / "loadavg"
    path.write_text(f"{load:.2f} {load:.2f} {load:.2f} 3/300 4242\n")
    return str(path)


def pressure(tmp_path: Path, some: float) -> str:
    path = tmp_path / "cpu.pressure"
    path.write_text(PSI.format(some=some))
    return str(path)


def test_cpu_load_counts_the_load_only_under_pressure(tmp_path: Path) -> None:
    avg = loadavg(tmp_path, 8.0)
    load, ratio, evidence = system.cpu_load(avg, 2, [pressure(tmp_path, 40.0)], 60.0)
    assert (load, ratio) == (8.0, 0.0)
    assert "CPU pressure 40.0 % < 60 %" in evidence and "not this stack's" in evidence
    load, ratio, evidence = system.cpu_load(avg, 2, [pressure(tmp_path, 60.0)], 60.0)
    assert (load, ratio) == (8.0, 4.0) and "CPU pressure 60.0 % >= 60 %" in evidence
    # No PSI file: the load average alone, as before.
    load, ratio, evidence = system.cpu_load(avg, 2, [str(tmp_path / "none")], 60.0)
    assert (load, ratio) == (8.0, 4.0) and "pressure" not in evidence


def test_the_profile_lists_cgroup_pressure_files() -> None:
    profile = load_profile("monitor")
    files = profile["pressure_files"]
    assert files and all(f.endswith("/cpu.pressure") for f in files)
    assert 0 < profile["pressure_gate_pct"] < 100


@pytest.mark.parametrize(("some", "shed"), [(3.0, False), (40.0, False), (100.0, True)])
def test_host_load_sheds_only_when_the_stack_itself_waits(tmp_path: Path, some: float,
                                                          shed: bool) -> None:
    """A load of 5 per CPU (above _CPU_MAX_RATIO 4.1): the host's work when our tasks
    rarely wait (3 %, 40 %), ours when they always do (100 %)."""
    world, manager = World(), FakeManager()
    monitor = make_monitor(tmp_path, world, manager, loadavg_file=loadavg(tmp_path, 10.0),
                           pressure_files=(pressure(tmp_path, some),))
    monitor.read_load = None  # the real reading, from the files above
    state = state_file.empty()
    monitor.cycle(state)
    assert (manager.actions == ["stop php8.2-fpm"]) is shed
    assert Path(monitor.settings.shield_flag).exists() is shed
    assert state["checks"]["load"] == ("MAX" if shed else "OK")
