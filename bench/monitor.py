"""bench/monitor: how fast does the self-healing monitor bring a killed service back, and
what does one check cycle cost?

In one fresh box (default bookworm, systemd) installed with ./install.sh --yes and
_MONITOR_INTERVAL=2, the real cron daemon driving the monitor:
  recovery  for each service (Nginx, PHP-FPM, MariaDB, Redis), `kill -9` of its master,
            --kills times: seconds until a new master serves again (median, min, max).
            The budget is reset before each kill, so each one is an isolated crash.
  cycle     CPU time and wall time of one healthy check cycle (median of --cycles), the
            peak Python allocation of a cycle (tracemalloc), the max RSS of the process,
            and the programs a healthy cycle started (should be none).
The load the monitor reads is pinned low (a file bind-mounted over /proc/loadavg in the
box), so the host's own load does not raise the crawler shield in the middle.
Needs root (it boots a box).

    .venv/bin/python -m bench.monitor [--release bookworm|trixie] [--kind systemd|sysv]
                                      [--kills 5] [--cycles 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tests.box.boxes import Box, start_box
from tests.box.test_monitor import (
    CONFIG,
    INTERVAL,
    PROFILE,
    cycle_costs,
    master,
    status,
    targets,
)

REPO = Path(__file__).resolve().parents[1]


def wait(predicate: Any, timeout: float, step: float = 0.1) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not within {timeout:.0f} s")
        time.sleep(step)
    return time.monotonic() - start


def recovery(box: Box, kills: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for service, (key, find, serving) in targets(box).items():
        times = []
        for _ in range(kills):
            box.run(["barracuda", "monitor", "reset", service])
            wait(lambda service=service: status(box)["services"][service]["state"] == "OK"
                 and serving(), 60)  # noqa: B023 - evaluated within the iteration
            before = master(box, find)
            box.run(["kill", "-9", before])

            def healed(find: str = find, before: str = before) -> bool:
                now = master(box, find)
                return bool(now) and now != before and serving()  # noqa: B023

            times.append(wait(healed, 120))
            time.sleep(1)
        bound = 2 * INTERVAL + float(PROFILE["services"][key]["start_s"])
        results[service] = {"median_s": statistics.median(times), "min_s": min(times),
                            "max_s": max(times), "kills": kills, "bound_s": bound}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="bookworm")
    parser.add_argument("--kind", default="systemd", choices=["systemd", "sysv"])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    box = start_box(args.kind, args.release)
    try:
        box.write_file("/root/.barracuda.cnf", CONFIG, 0o600)
        box.set_load(0.1)
        box.install_project(REPO)
        wait(lambda: bool(status(box)["services"]) and all(
            s["state"] == "OK" for s in status(box)["services"].values()), 150, step=1)
        report = {"box": f"{args.kind}-{args.release}", "interval_s": INTERVAL,
                  "recovery": recovery(box, args.kills), "cycle": cycle_costs(box, args.cycles)}
    finally:
        box.stop()
    cycle = report["cycle"]
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"monitor bench on {report['box']}, _MONITOR_INTERVAL={INTERVAL}")
    print(f"{'service':<16} {'median':>8} {'min':>7} {'max':>7} {'bound':>7}  (s, {args.kills} "
          "kill -9 each)")
    for name, r in report["recovery"].items():
        print(f"{name:<16} {r['median_s']:>8.2f} {r['min_s']:>7.2f} {r['max_s']:>7.2f} "
              f"{r['bound_s']:>7.0f}")
    print(f"one healthy cycle: CPU {statistics.median(cycle['cpu_ms']):.1f} ms, wall "
          f"{statistics.median(cycle['wall_ms']):.1f} ms (median of {args.cycles}); peak "
          f"allocation {cycle['peak_kib']:.0f} KiB; process max RSS "
          f"{cycle['maxrss_kib'] / 1024:.0f} MiB; programs started: {len(cycle['started'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
