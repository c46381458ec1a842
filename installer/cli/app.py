"""The application object handed to every command: options, console and exits."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

import typer

from installer.apply import Result
from installer.errors import BarracudaError
from installer.plan import Plan


@dataclass
class App:
    """Per-invocation options; the console writes on stderr, --json writes on stdout."""

    verbose: int = 0
    quiet: bool = False
    json: bool = False
    yes: bool = False
    dry_run: bool = False
    check: bool = False
    keep_local_edits: bool = False
    root: Path = Path("/")
    config: str | None = None
    err: TextIO = field(default_factory=lambda: sys.stderr)
    out: TextIO = field(default_factory=lambda: sys.stdout)

    # -- console -------------------------------------------------------------------------
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

    def fail(self, error: BarracudaError) -> NoReturn:
        print(f"error: {error}", file=self.err, flush=True)
        raise typer.Exit(error.exit_code)

    # -- plans and progress ----------------------------------------------------------------
    def show_plan(self, plan: Plan, *, diffs: bool = True) -> None:
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
                if diffs and change.diff and (self.verbose or self.dry_run):
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
