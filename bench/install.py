"""bench/install: how much does barracuda add on top of the package manager?

In fresh boxes of one release (default bookworm, systemd), from one run:
  floor    apt-get update + apt-get install of exactly the packages install.sh and
           `barracuda install` install (no configuration, no services tuned)
  install  ./install.sh --yes (the README's main command)
  noop     a second `barracuda install --yes` on the converged box
and prints the ratios install/floor and noop/floor. Needs root (it boots boxes).

    .venv/bin/python -m bench.install [--release bookworm|trixie] [--kind systemd|sysv]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.box.boxes import Box, start_box

REPO = Path(__file__).resolve().parents[1]
OS_RELEASE = {"bookworm": 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
              "trixie": 'ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n'}


def package_list(release: str) -> list[str]:
    """What a first install installs: install.sh's own apt list, then the plan's packages."""
    script = (REPO / "install.sh").read_text()
    block = re.search(r"APT_PACKAGES=\((.*?)\)", script, re.S)
    assert block, "APT_PACKAGES not found in install.sh"
    names = block.group(1).split()
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "etc").mkdir()
        (Path(root) / "etc/os-release").write_text(OS_RELEASE[release])
        plan = subprocess.run(
            [sys.executable, "-m", "installer.cli.barracuda", "install", "--root", root,
             "--dry-run", "--json"], capture_output=True, text=True, check=True)
    for step in json.loads(plan.stdout)["plan"]:
        if step["resource"].startswith("packages:"):
            for change in step["changes"]:
                names += change["reason"].split(":")[0].split()
    return list(dict.fromkeys(names))


def timed(box: Box, cmd: str) -> float:
    started = time.monotonic()
    box.run(cmd, timeout=3600)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="bookworm", choices=sorted(OS_RELEASE))
    parser.add_argument("--kind", default="systemd", choices=["systemd", "sysv"])
    args = parser.parse_args()
    packages = package_list(args.release)

    floor_box = start_box(args.kind, args.release)
    try:
        floor = timed(floor_box, "apt-get update -q && DEBIAN_FRONTEND=noninteractive "
                      "apt-get install -y -q --no-install-recommends " + " ".join(packages))
    finally:
        floor_box.stop()

    box = start_box(args.kind, args.release)
    try:
        started = time.monotonic()
        box.install_project(REPO)
        install = time.monotonic() - started
        noop = timed(box, "barracuda install --yes")
    finally:
        box.stop()

    print(f"bench/install {time.strftime('%Y-%m-%d')} {args.kind}-{args.release} on "
          f"{platform.node()} ({platform.machine()}, {len(packages)} packages)")
    print(f"  floor   apt-get install      {floor:7.1f} s   1.00")
    print(f"  install ./install.sh --yes   {install:7.1f} s   {install / floor:.2f} x floor")
    print(f"  noop    barracuda install    {noop:7.1f} s   {noop / floor:.2f} x floor")


if __name__ == "__main__":
    main()
