"""Packages, services, guarded commands and reload handlers, on a live-like target whose
commands go to a recording runner and whose services are a fake manager."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from installer.apply import Applier
from installer.checkpoint import Checkpoint
from installer.facts import Facts
from installer.plan import Component
from installer.resources.base import Context, reload, restart
from installer.resources.files import File
from installer.resources.system import POLICY_RC_D, Command, Packages, Service
from installer.runner import Result
from installer.state import ManagedState
from installer.target import Target


class LiveTarget(Target):
    """Files under a temporary root, but packages, services and commands 'executed'."""

    @property
    def live(self) -> bool:
        return True


@dataclass
class RecordingRunner:
    installed: set[str] = field(default_factory=set)
    calls: list[list[str]] = field(default_factory=list)
    inputs: list[str | None] = field(default_factory=list)
    policy_seen: list[bool] = field(default_factory=list)
    root: Path = Path("/")

    def run(self, argv: Sequence[str], *, timeout: float = 300, check: bool = True,
            input: str | None = None, env: Mapping[str, str] | None = None) -> Result:
        args = list(argv)
        self.calls.append(args)
        self.inputs.append(input)
        if args[0] == "dpkg-query":
            out = "".join(f"{name}\tii \t1.0\n" for name in sorted(self.installed))
            return Result(tuple(args), 0, out)
        if args[0] == "apt-get" and "install" in args:
            self.policy_seen.append((self.root / POLICY_RC_D.lstrip("/")).exists())
            self.installed.update(a for a in args if not a.startswith("-") and "=" not in a
                                  and a not in ("apt-get", "install"))
        return Result(tuple(args), 0)


@dataclass
class FakeServices:
    running: set[str] = field(default_factory=set)
    enabled: set[str] = field(default_factory=set)
    actions: list[str] = field(default_factory=list)
    kind: str = "fake"

    def is_running(self, name: str) -> bool:
        return name in self.running

    def is_enabled(self, name: str) -> bool:
        return name in self.enabled

    def enable(self, name: str) -> None:
        self.actions.append(f"enable {name}")
        self.enabled.add(name)

    def start(self, name: str) -> None:
        self.actions.append(f"start {name}")
        self.running.add(name)

    def stop(self, name: str) -> None:
        self.actions.append(f"stop {name}")
        self.running.discard(name)

    def restart(self, name: str) -> None:
        self.actions.append(f"restart {name}")

    def reload(self, name: str) -> None:
        self.actions.append(f"reload {name}")


def make_ctx(root: Path, runner: RecordingRunner, services: FakeServices) -> Context:
    (root / "var/lib/dpkg").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text("")
    runner.root = root
    target = LiveTarget(root)
    return Context(target=target, runner=runner, facts=Facts(target, runner), services=services,
                   state=ManagedState.load(target), backup_dir=root / "moved",
                   log=logging.getLogger("test"))


def apply(ctx: Context, *components: Component) -> list[str]:
    outcome = Applier(ctx, Checkpoint(ctx.target, ctx.target.root / "cp")).run(list(components))
    return [r.status for r in outcome.results]


def test_packages_install_once_with_services_held(tmp_path: Path) -> None:
    runner, services = RecordingRunner(installed={"curl"}), FakeServices()
    ctx = make_ctx(tmp_path, runner, services)
    (tmp_path / "usr/sbin").mkdir(parents=True)
    (tmp_path / POLICY_RC_D.lstrip("/")).write_text("#!/bin/sh\nexit 0\n")  # the operator's
    packages = Packages("stack", ["curl", "nginx", "redis-server"])
    assert [c.reason for c in packages.check(ctx)] == ["nginx redis-server: not installed"]
    assert apply(ctx, Component("p", [packages])) == ["changed"]
    apt = [c for c in runner.calls if c[0] == "apt-get"]
    assert [c[3] for c in apt] == ["update", "install"]
    assert apt[1][-2:] == ["nginx", "redis-server"] and "--no-install-recommends" in apt[1]
    assert runner.policy_seen == [True]
    assert (tmp_path / POLICY_RC_D.lstrip("/")).read_text() == "#!/bin/sh\nexit 0\n"
    assert packages.check(ctx) == []


def test_service_enabled_and_started_then_ok(tmp_path: Path) -> None:
    services = FakeServices(enabled={"cron"})
    ctx = make_ctx(tmp_path, RecordingRunner(), services)
    service = Service("cron")
    assert [c.action for c in service.check(ctx)] == ["start"]
    assert apply(ctx, Component("s", [service])) == ["changed"]
    assert services.actions == ["start cron"]
    assert apply(ctx, Component("s", [service])) == ["ok"]


def test_guarded_command_runs_only_when_needed(tmp_path: Path) -> None:
    runner = RecordingRunner()
    ctx = make_ctx(tmp_path, runner, FakeServices())
    done: list[bool] = [False]
    command = Command("demo", ["mariadb", "--batch"], done=lambda c: done[0],
                      input=lambda c: "SELECT 1;\n")
    assert apply(ctx, Component("c", [command])) == ["changed"]
    assert runner.calls[-1] == ["mariadb", "--batch"] and runner.inputs[-1] == "SELECT 1;\n"
    done[0] = True
    assert apply(ctx, Component("c", [command])) == ["ok"]


def test_reloads_are_deduplicated_and_skipped_for_services_just_started(tmp_path: Path) -> None:
    services = FakeServices(running={"nginx"}, enabled={"nginx", "php"})
    ctx = make_ctx(tmp_path, RecordingRunner(), services)
    web = Component("web", [
        File("/etc/a.conf", content="a", notify=(reload("nginx"),)),
        File("/etc/b.conf", content="b", notify=(reload("nginx"), restart("php"))),
        Service("nginx"), Service("php"),
    ])
    apply(ctx, web)
    # php was started by this run (it already reads the new files): no restart for it
    assert services.actions == ["start php", "reload nginx"]
    services.actions.clear()
    assert set(apply(ctx, web)) == {"ok"}
    assert services.actions == []
