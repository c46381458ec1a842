"""Load shedding that sees its own machine: on a box showing the kernel's real readings
(Box.real_load: /proc/loadavg is then the host's, shared with other work), the monitor
weights the load by the CPU pressure (PSI) of the box's cgroup. A host busy with other work,
its load per CPU above _CPU_MAX_RATIO, sheds nothing once the box's own work (its install)
has aged out of the 10 s pressure; CPU burners inside the box shed PHP, and PHP comes back
once they stop.

Debian 12 with systemd only: the systemd box runs in a cgroup of its own, whose cpu.pressure
it sees (the sysv box has no cgroup file system and falls back to the load average, which
the unit tests cover)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.box.boxes import PRESSURE_FILES, Box
from tests.box.conftest import installed_box
from tests.box.test_monitor import PATHS, incidents, status, wait_for

INTERVAL = 2
MAX_RATIO = 2.0
# Low ratios, so that the host's load (other work on a shared machine, and the burners below)
# is above them; the critical one high, so that nothing is killed.
CONFIG = (f"_MONITOR_INTERVAL={INTERVAL}\n_CPU_SPIDER_RATIO={MAX_RATIO - 0.1}\n"
          f"_CPU_MAX_RATIO={MAX_RATIO}\n_CPU_CRIT_RATIO=50\n")
HOST_BURNERS = 4  # 2 per CPU on a 2-CPU host, on top of whatever else it runs
BOX_BURNERS = 6
OBSERVE_S = 24  # a dozen monitor cycles
SETTLE_S = 120


@pytest.fixture(scope="module")
def box(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[Box]:
    with installed_box(request.config, cnf=CONFIG) as installed:
        installed.real_load()
        yield installed


def load_per_cpu(box: Box) -> float:
    cpus = int(box.run(["getconf", "_NPROCESSORS_ONLN"]).stdout)
    return float(box.read_file("/proc/loadavg").split()[0]) / cpus


def pressure(box: Box) -> str:
    for path in PRESSURE_FILES:
        read = box.run(["cat", path], check=False)
        if read.returncode == 0 and read.stdout.startswith("some "):
            return f"{path}: {read.stdout.splitlines()[0]}"
    pytest.fail(f"the box shows none of {PRESSURE_FILES}: PSI is the claim of this module")


def shed_incidents(box: Box) -> list[str]:
    return [i["action"] for i in incidents(box) if i["check"] == "load:max"]


def test_host_load_does_not_shed(box: Box) -> None:
    print(f"\n[pressure] {box.name}: {pressure(box)}")
    burners = [subprocess.Popen(["timeout", "300", "sha256sum", "/dev/zero"],
                                stdout=subprocess.DEVNULL, start_new_session=True)
               for _ in range(HOST_BURNERS)]
    try:
        # The host's load (other work, and these burners outside the box) above the ratio
        # at which the load average alone would stop PHP.
        wait_for(f"the host's load above {MAX_RATIO} per CPU",
                 lambda: load_per_cpu(box) > MAX_RATIO * 1.2, 120, step=1)
        # The box's own work (the install that just ended) ages out of its 10 s pressure:
        # from then on only the host is busy. What the monitor did before does not count.
        wait_for("the monitor's load check OK", lambda: status(box)["checks"].get("load")
                 == "OK" and not status(box)["checks"].get("shed"), SETTLE_S, step=1)
        seen = len(incidents(box))
        ratios = []
        end = time.monotonic() + OBSERVE_S
        while time.monotonic() < end:
            ratios.append(load_per_cpu(box))
            time.sleep(2)
        print(f"[pressure] host load per CPU during {OBSERVE_S} s: {min(ratios):.2f}-"
              f"{max(ratios):.2f}; {pressure(box)}")
        assert min(ratios) > MAX_RATIO
        during = [f"{i['check']}: {i['evidence']}" for i in incidents(box)[seen:]]
        assert during == [], during
        assert box.run(["test", "-e", PATHS["shield_flag"]], check=False).returncode != 0
        report = status(box)
        assert report["checks"]["load"] == "OK", report["checks"]
        assert all(s["state"] == "OK" for s in report["services"].values()), report
    finally:
        for burner in burners:
            # The whole session: killing `timeout` alone would leave its sha256sum running.
            os.killpg(burner.pid, signal.SIGKILL)
            burner.wait()


def test_a_cpu_burner_inside_the_box_sheds_and_php_comes_back(box: Box) -> None:
    # Started by the box's systemd, so in the box's cgroup (a command of Box.run enters the
    # box's namespaces but stays in the host's cgroup, where the box's PSI never sees it).
    box.run(["systemd-run", "--quiet", "--collect", "--unit=test-burners", "sh", "-c",
             f"for i in $(seq {BOX_BURNERS}); do timeout 120 sha256sum /dev/zero & done; wait"])
    try:
        took = wait_for("PHP shed by the burners in the box",
                        lambda: any(a.startswith("PHP shed") for a in shed_incidents(box)), 90,
                        step=1)
        shed = [i for i in incidents(box) if i["check"] == "load:max"][-1]
        print(f"[pressure] shed after {took:.0f} s: {shed['evidence']}")
        assert "CPU pressure" in shed["evidence"], shed
    finally:
        box.run(["systemctl", "stop", "test-burners"], check=False)
    back = wait_for("PHP resumed once the burners stopped",
                    lambda: any(a.startswith("PHP resumed") for a in shed_incidents(box)), 90,
                    step=1)
    print(f"[pressure] PHP resumed {back:.0f} s after the burners stopped")
    php = [name for name in status(box)["services"] if name.startswith("php")]
    wait_for("PHP-FPM serving again", lambda: all(
        status(box)["services"][name]["state"] == "OK" for name in php), 60, step=1)
