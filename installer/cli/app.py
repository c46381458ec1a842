"""The application object of one invocation: the run's options and the terminal console.

Each CLI's root callback creates it (into ctx.obj); the shared options of a command
(installer/cli/options.py) fill it in; commands read it with `application(ctx)`."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
import typer

from installer.errors import UsageError
from installer.runoptions import RunOptions

if TYPE_CHECKING:
    from installer.apply import Result
    from installer.plan import Plan


@dataclass
class App:
    """Options and console; the console writes on stderr, --json writes on stdout.

    `options` is what the engine sees (installer.runoptions.RunOptions); the App itself is
    the Console the engine reports to."""

    options: RunOptions = field(default_factory=RunOptions)
    verbose: int = 0
    quiet: bool = False
    err: TextIO = field(default_factory=lambda: sys.stderr)
    out: TextIO = field(default_factory=lambda: sys.stdout)

    # -- options -------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.options.root

    @property
    def config(self) -> str | None:
        return self.options.config

    @property
    def json(self) -> bool:
        return self.options.json

    @property
    def yes(self) -> bool:
        return self.options.yes

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def set_options(self, values: dict[str, Any]) -> None:
        """Take the shared options a command was given (names as in RunOptions, plus
        verbose and quiet); a --root that is not a directory is a usage error."""
        values = dict(values)
        self.verbose = int(values.pop("verbose", self.verbose))
        self.quiet = bool(values.pop("quiet", self.quiet))
        root = values.get("root")
        if root is not None and not Path(root).is_dir():
            why = "not a directory" if Path(root).exists() else "does not exist"
            raise UsageError(f"--root {root}: {why}")
        self.options = replace(self.options, **values)

    # -- console -------------------------------------------------------------------------
    @property
    def interactive(self) -> bool:
        return sys.stdin.isatty()

    def confirm(self, question: str) -> bool:
        return bool(typer.confirm(question, default=False, err=True))

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.err, flush=True)

    def detail(self, message: str) -> None:
        if self.verbose and not self.quiet:
            print(message, file=self.err, flush=True)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=self.err, flush=True)

    def emit_json(self, payload: dict[str, Any]) -> None:
        print(json.dumps(payload, indent=2, sort_keys=True), file=self.out, flush=True)

    # -- plans and progress ----------------------------------------------------------------
    def show_plan(self, plan: Plan) -> None:
        if plan.notes and (self.verbose or self.dry_run):
            self.say("Tuning for this machine:")
            for note in plan.notes:
                self.say(f"  {note}")
        pending = [s for s in plan.steps if s.changes]
        if not pending:
            self.say("Plan: nothing to change.")
            return
        self.say(f"Plan: {len(plan.pending)} changes" + (
            f", {len(plan.planned_only)} planned only (not executed under --root)"
            if plan.planned_only else ""))
        for step in pending:
            for change in step.changes:
                mark = "~" if change.executed else "-"
                self.say(f"  {mark} [{step.component}] {change.resource}: "
                         f"{change.action}: {change.reason}")
                if change.diff and (self.verbose or self.dry_run):
                    for line in change.diff.rstrip("\n").splitlines():
                        self.say(f"      {line}")
        if self.verbose:
            for step in plan.steps:
                if not step.changes:
                    self.detail(f"  = [{step.component}] {step.resource.id}: "
                                f"{step.resource.ok_reason}")

    def progress(self, index: int, total: int, result: Result) -> None:
        if result.status == "ok":
            self.detail(f"[{index}/{total}] {result.resource}: ok ({result.reason})")
        else:
            self.say(f"[{index}/{total}] {result.resource}: {result.status}"
                     + (f" ({result.reason})" if result.reason else ""))


def application(ctx: click.Context) -> App:
    """The App the root callback stored for this invocation."""
    app = ctx.find_object(App)
    if app is None:  # a command run without its CLI's root callback (a defect)
        raise RuntimeError("no App in the click context: the root callback did not run")
    return app
