"""Package upgrades inside a converge: the stack's packages to the channel's versions (one
resource per component, so only the services whose packages changed are restarted), and
BOA's `system` mode (every operating-system package, nothing else)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from installer.apply import listed
from installer.resources.base import Change, Context, Resource
from installer.resources.system import services_held

WAIT = ["-o", "DPkg::Lock::Timeout=120"]
KEEP_CONFIG = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
# apt-get -s prints one "Inst NAME [OLD] (NEW ...)" line per package it would install.
_INST = re.compile(r"^Inst (\S+)(?: \[([^\]]+)\])? \((\S+)")


def simulated(ctx: Context, argv: list[str]) -> list[tuple[str, str, str]]:
    """(package, installed version or "", new version) for each package apt would install."""
    result = ctx.runner.run(["apt-get", "-s", "-q", *argv], timeout=300)
    found = []
    for line in result.stdout.splitlines():
        match = _INST.match(line)
        if match:
            found.append((match.group(1), match.group(2) or "", match.group(3)))
    return found


def describe(moves: list[tuple[str, str, str]], limit: int = 6) -> str:
    return listed([f"{name} {old or 'new'} -> {new}" for name, old, new in moves], limit)


@dataclass
class PackageUpgrade(Resource):
    """The installed packages of one component at the channel's versions: the newest the
    release offers, or the exact version the manifest pins (downgrades included)."""

    changes_environment = True

    name: str
    packages: list[str]
    pins: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"upgrade:{self.name}"

    @property
    def ok_reason(self) -> str:
        return "at the channel's versions"

    def _argv(self, ctx: Context) -> list[str]:
        installed = ctx.facts.packages()
        wanted = [p for p in self.packages if p in installed]
        if not wanted:
            return []
        return ["install", "--only-upgrade", "--allow-downgrades", "--no-install-recommends",
                *KEEP_CONFIG,
                *(f"{p}={self.pins[p]}" if p in self.pins else p for p in wanted)]

    def check(self, ctx: Context) -> list[Change]:
        if not ctx.target.live:
            return []  # nothing is installed under --root: the Packages resources plan it
        argv = self._argv(ctx)
        if not argv:
            return []
        moves = simulated(ctx, argv)
        if not moves:
            return []
        return [self.change("upgrade", describe(moves))]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        argv = self._argv(ctx)
        if not argv:
            return
        # Services stay as they are during the transaction; the component's restart handler
        # restarts only those whose packages moved, once their configuration is validated.
        with services_held(ctx):
            ctx.runner.run(["apt-get", *WAIT, "-y", "-q", *argv], timeout=3600)
        ctx.facts.forget_packages()


@dataclass
class SystemUpgrade(Resource):
    """Every upgradable operating-system package (`apt-get upgrade`: nothing is removed and
    no new package is pulled in); the packages' own scripts restart their services."""

    changes_environment = True

    name: str = "system"

    @property
    def id(self) -> str:
        return f"upgrade:{self.name}"

    @property
    def ok_reason(self) -> str:
        return "no package to upgrade"

    def check(self, ctx: Context) -> list[Change]:
        if not ctx.target.live:
            return []
        moves = simulated(ctx, ["upgrade", *KEEP_CONFIG])
        if not moves:
            return []
        return [self.change("upgrade", f"{len(moves)} packages: {describe(moves)}")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        ctx.runner.run(["apt-get", *WAIT, "-y", "-q", "upgrade", *KEEP_CONFIG], timeout=3600)
        ctx.facts.forget_packages()


def apt_update(ctx: Context) -> str | None:
    """Refresh the package lists before planning; a failure (offline) is returned as a
    warning: the plan then uses the lists already on the machine."""
    if not ctx.target.live or ctx.apt_updated:
        return None
    result = ctx.runner.run(["apt-get", *WAIT, "-q", "update"], check=False, timeout=600)
    if result.ok and not any(line.startswith(("W:", "E:")) for line in
                             result.output.splitlines()):
        ctx.apt_updated = True
        return None
    problems = [line for line in result.output.splitlines() if line.startswith(("W:", "E:"))]
    detail = problems[0] if problems else f"rc {result.rc}"
    return (f"apt-get update failed ({detail}): planning with the package lists already on "
            "this machine")
