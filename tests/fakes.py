"""The one fake runner of the tests: it records every command and answers like a Debian
machine would, without running anything.

- `dpkg-query` lists `installed` (all at version 1.0);
- `apt-get -s ...` (a simulation) prints `pending` until an upgrade ran;
- `apt-get update` exits `update_rc` (100 says the mirror is unreachable);
- `apt-get install PKG...` adds the packages to `installed` (and notes in `policy_seen`
  whether `root`'s policy-rc.d held service starts back); any other apt-get clears
  `pending`;
- `answers`, tried first, answer a command whose argv starts with a key, with a Result or
  with a function of the argv (for commands with side effects, e.g. a venv being made).
Everything else succeeds with no output."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from installer.facts import Facts
from installer.resources.base import Context
from installer.resources.system import POLICY_RC_D
from installer.runner import Result
from installer.state import ManagedState
from installer.target import Target

Answer = Result | Callable[[list[str]], Result]


@dataclass
class FakeRunner:
    installed: set[str] = field(default_factory=set)
    pending: str = ""
    update_rc: int = 0
    answers: dict[tuple[str, ...], Answer] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    inputs: list[str | None] = field(default_factory=list)
    policy_seen: list[bool] = field(default_factory=list)
    root: Path = Path("/")

    def run(self, argv: Sequence[str], *, timeout: float = 300, check: bool = True,
            input: str | None = None, env: Mapping[str, str] | None = None) -> Result:
        args = [str(a) for a in argv]
        self.calls.append(args)
        self.inputs.append(input)
        for prefix, answer in self.answers.items():
            if tuple(args[:len(prefix)]) == prefix:
                return answer(args) if callable(answer) else answer
        if args[0] == "dpkg-query":
            return Result(tuple(args), 0, "".join(f"{name}\tii \t1.0\n"
                                                  for name in sorted(self.installed)))
        if args[:2] == ["apt-get", "-s"]:
            return Result(tuple(args), 0, self.pending)
        if args[0] == "apt-get" and "update" in args:
            out = "" if self.update_rc == 0 else "E: Could not resolve deb.debian.org\n"
            return Result(tuple(args), self.update_rc, out)
        if args[0] == "apt-get":
            if "install" in args:
                self.policy_seen.append((self.root / POLICY_RC_D.lstrip("/")).exists())
                self.installed.update(a for a in args[args.index("install") + 1:]
                                      if not a.startswith("-") and "=" not in a)
            self.pending = ""
        return Result(tuple(args), 0)


class LiveTarget(Target):
    """Files under a temporary root, but packages, services and commands 'executed'."""

    @property
    def live(self) -> bool:
        return True


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


def make_ctx(root: Path, runner: FakeRunner, services: FakeServices) -> Context:
    """A live-like context under `root`: files for real, commands to `runner`."""
    (root / "var/lib/dpkg").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text("")
    runner.root = root
    target = LiveTarget(root)
    return Context(target=target, runner=runner, facts=Facts(target, runner), services=services,
                   state=ManagedState.load(target), backup_dir=root / "moved",
                   log=logging.getLogger("test"))
