"""Packages, services and guarded commands: the resources that act through other programs.

Under --root they are planned but not executed (their changes carry executed=False)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from installer.fileops import write_atomic
from installer.resources.base import Change, Context, Resource

POLICY_RC_D = "/usr/sbin/policy-rc.d"
_HOLD = (
    b"#!/bin/sh\n# barracuda: services start only once their configuration is in place\n"
    b"exit 101\n"
)


@contextmanager
def services_held(ctx: Context) -> Iterator[None]:
    """Packages install without starting their services (policy-rc.d answers 101), so no
    service ever runs on the package's defaults. An existing policy-rc.d is put back."""
    policy = ctx.target.path(POLICY_RC_D)
    saved = policy.with_name("policy-rc.d.barracuda-saved")
    if policy.exists():
        os.replace(policy, saved)
    write_atomic(policy, _HOLD, mode=0o755)
    try:
        yield
    finally:
        policy.unlink(missing_ok=True)
        if saved.exists():
            os.replace(saved, policy)


@dataclass
class Packages(Resource):
    """A set of distribution packages installed in one apt transaction."""

    changes_environment = True

    name: str
    packages: list[str]
    recommends: bool = False

    @property
    def id(self) -> str:
        return f"packages:{self.name}"

    @property
    def ok_reason(self) -> str:
        return f"{len(self.packages)} packages installed"

    def _missing(self, ctx: Context) -> list[str]:
        installed = ctx.facts.packages()
        return [name for name in self.packages if name not in installed]

    def check(self, ctx: Context) -> list[Change]:
        missing = self._missing(ctx)
        if not missing:
            return []
        return [self.live_change(ctx, "install", f"{' '.join(missing)}: not installed")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        missing = self._missing(ctx)
        # apt waits for a lock held by a running apt-daily job instead of failing at once.
        wait = ["-o", "DPkg::Lock::Timeout=120"]
        if not ctx.apt_updated:
            ctx.runner.run(["apt-get", *wait, "update"], timeout=600)
            ctx.apt_updated = True
        argv = [
            "apt-get", *wait, "install", "-y", "-q",
            "-o", "Dpkg::Options::=--force-confdef",
            "-o", "Dpkg::Options::=--force-confold",
        ]
        if not self.recommends:
            argv.append("--no-install-recommends")
        with services_held(ctx):
            ctx.runner.run([*argv, *missing], timeout=3600)
        ctx.facts.forget_packages()


@dataclass
class Service(Resource):
    """A service that must be enabled at boot and running. Started after its group's files
    are written and validated (see apply.py)."""

    name: str
    enabled: bool = True
    running: bool = True

    @property
    def id(self) -> str:
        return f"service:{self.name}"

    @property
    def ok_reason(self) -> str:
        return "enabled and running"

    def check(self, ctx: Context) -> list[Change]:
        if ctx.services is None:
            return [self.change("start", "planned only under --root", executed=False)]
        changes = []
        if self.enabled and not ctx.services.is_enabled(self.name):
            changes.append(self.change("enable", "not enabled at boot"))
        if self.running and not ctx.services.is_running(self.name):
            changes.append(self.change("start", "not running"))
        return changes

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if ctx.services is None:
            return
        actions = {c.action for c in changes}
        if "enable" in actions:
            ctx.services.enable(self.name)
        if "start" in actions:
            ctx.services.start(self.name)


@dataclass
class Command(Resource):
    """A command that runs only when its guard says the work is not done yet."""

    name: str
    argv: list[str]
    done: Callable[[Context], bool]  # the guard: True when nothing needs doing
    why: str = "not done yet"
    input: Callable[[Context], str] | None = None  # stdin, e.g. SQL; never logged
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 600

    @property
    def id(self) -> str:
        return f"command:{self.name}"

    @property
    def ok_reason(self) -> str:
        return "already done"

    def check(self, ctx: Context) -> list[Change]:
        if not ctx.target.live:
            return [self.live_change(ctx, "run", self.why)]
        if self.done(ctx):
            return []
        return [self.change("run", self.why)]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        stdin = self.input(ctx) if self.input else None
        ctx.runner.run(self.argv, input=stdin, env=self.env, timeout=self.timeout)
