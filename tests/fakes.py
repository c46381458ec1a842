"""The one fake runner of the tests: it records every command and answers like a Debian
machine would, without running anything.

- `dpkg-query` lists `installed` (all at version 1.0);
- `apt-get -s ...` (a simulation) prints `pending` until an upgrade ran;
- `apt-get update` exits `update_rc` (100 says the mirror is unreachable);
- `apt-get install PKG...` adds the packages to `installed`; any other apt-get clears
  `pending`;
- `answers`, tried first, answer a command whose argv starts with a key, with a Result or
  with a function of the argv (for commands with side effects, e.g. a venv being made).
Everything else succeeds with no output."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from installer.runner import Result

Answer = Result | Callable[[list[str]], Result]


@dataclass
class FakeRunner:
    installed: set[str] = field(default_factory=set)
    pending: str = ""
    update_rc: int = 0
    answers: dict[tuple[str, ...], Answer] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    inputs: list[str | None] = field(default_factory=list)

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
                self.installed.update(a for a in args[args.index("install") + 1:]
                                      if not a.startswith("-") and "=" not in a)
            self.pending = ""
        return Result(tuple(args), 0)
