"""Apply a plan: re-check each resource, checkpoint, change, validate, start, reload once,
verify; on any failure or SIGINT/SIGTERM/SIGHUP/SIGQUIT undo the run's journal (databases,
accounts, trees), restore the checkpointed files and say in one sentence what was restored."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from installer.checkpoint import Checkpoint
from installer.errors import ApplyError, BarracudaError, Interrupted, RollbackError
from installer.plan import Component, Validator, ordered
from installer.resources.base import Change, Context, Handler, Resource
from installer.resources.system import Service
from installer.runlog import log_result
from installer.staging import pending_paths, run_staged


@dataclass
class Result:
    component: str
    resource: str
    status: str  # changed, ok, skipped, failed
    changes: list[Change]
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"component": self.component, "resource": self.resource, "status": self.status,
                "reason": self.reason, "changes": [c.as_dict() for c in self.changes]}


@dataclass
class Outcome:
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def summary(self) -> str:
        return (f"{self.count('changed')} changed, {self.count('ok')} ok, "
                f"{self.count('failed')} failed in {self.seconds:.1f} s")


Progress = Callable[[int, int, Result], None]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


@contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGINT, SIGTERM, SIGHUP (a dropped SSH session) and SIGQUIT into Interrupted,
    so a run stopped midway rolls back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(f"stopped by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run_handler(ctx: Context, handler: Handler) -> None:
    if ctx.services is None:
        return
    if handler.action == "reload":
        ctx.services.reload(handler.service)
    elif handler.action == "restart":
        ctx.services.restart(handler.service)
    else:
        raise ApplyError(f"unknown handler {handler}")


def _first_error(output: str) -> str:
    """The line of a validator's output that names the problem (nginx -t: the [emerg] line
    with its file and line), else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in ("[emerg]", "[crit]", "[alert]", "ERROR", "error"):
        found = [line for line in lines if marker in line]
        if found:
            return found[0]
    return lines[-1] if lines else ""


class Applier:
    def __init__(self, ctx: Context, checkpoint: Checkpoint, progress: Progress | None = None):
        self.ctx = ctx
        self.checkpoint = checkpoint
        self.progress = progress
        self.outcome = Outcome()
        self.handlers_run: list[Handler] = []
        self._index = 0
        self._total = 0

    def run(self, components: list[Component]) -> Outcome:
        started = time.monotonic()
        plan = ordered(components)
        self._total = sum(len(resources) for _, resources in plan)
        try:
            with interruptible():
                if self.ctx.target.live:
                    self._prevalidate(plan)
                for component, resources in plan:
                    self._component(component, resources)
        except (BarracudaError, OSError) as exc:
            self.outcome.seconds = time.monotonic() - started
            with interruptible():
                self._rollback(exc)
        for problem in self.ctx.journal.commit():
            self.ctx.note(problem)
        self.outcome.seconds = time.monotonic() - started
        return self.outcome

    def _prevalidate(self, plan: list[tuple[Component, list[Resource]]]) -> None:
        """Run the validators of every component with pending file changes against the whole
        run's files staged over the live tree (installer/staging.py), before the first
        change. Validators whose program is not installed yet, and those of components at or
        after a pending account, package or tree change (a pool names a user that does not
        exist yet), are left to the post-write check, as is everything where staging is
        unavailable."""
        staged: list[Resource] = []
        validators: dict[tuple[str, ...], Validator] = {}
        blocked = False  # an account, package or tree change is pending from here on
        for component, resources in plan:
            pending = pending_paths(self.ctx, resources)
            staged += pending
            blocked = blocked or any(
                r.changes_environment and any(c.executed for c in r.check(self.ctx))
                for r in resources)
            if pending and not blocked:
                for validator in component.validators:
                    if shutil.which(validator.argv[0]):
                        validators.setdefault(tuple(validator.argv), validator)
        for validator in validators.values():
            result = run_staged(self.ctx, staged, validator.argv).result
            if result is None:
                return
            if not result.ok:
                detail = _first_error(result.output) or f"rc {result.rc}"
                raise ApplyError(f"{validator.what} failed on the staged change, before "
                                 f"anything was changed: {detail}")

    def _component(self, component: Component, resources: list[Resource]) -> None:
        # Files and packages first, then validation, then services, then reloads.
        services = [r for r in resources if isinstance(r, Service)]
        others = [r for r in resources if not isinstance(r, Service)]
        handlers: list[Handler] = []
        changed = False
        for resource in others:
            changed |= self._resource(component.name, resource, handlers)
        if changed:
            for validator in component.validators:
                if validator.live_only and not self.ctx.target.live:
                    continue
                result = self.ctx.runner.run(validator.argv, check=False, timeout=120)
                if not result.ok:
                    detail = _first_error(result.output) or f"rc {result.rc}"
                    raise ApplyError(f"{validator.what} failed: {detail}")
        started: set[str] = set()
        for service in services:
            if self._resource(component.name, service, handlers):
                started.add(service.name)
                changed = True
        for handler in dict.fromkeys(handlers):
            if handler.service in started:
                continue  # a service started in this run already reads the new config
            _run_handler(self.ctx, handler)
            self.handlers_run.append(handler)
        if changed and self.ctx.target.live:
            for probe in component.health:
                problem = probe(self.ctx)
                if problem:
                    raise ApplyError(f"{component.name} health check failed: {problem}")

    def _resource(self, component: str, resource: Resource, handlers: list[Handler]) -> bool:
        self._index += 1
        try:
            changes = resource.check(self.ctx)
            executed = [c for c in changes if c.executed]
            if executed:
                for path in resource.paths(self.ctx):
                    self.checkpoint.save(path)
                resource.apply(self.ctx, changes)
                handlers.extend(resource.notify)
                status = "changed"
            else:
                status = "skipped" if changes else "ok"
        except BaseException as exc:
            reason = str(exc) or type(exc).__name__
            self._report(Result(component, resource.id, "failed", [], reason))
            raise
        reason = "; ".join(c.reason for c in changes) if changes else resource.ok_reason
        self._report(Result(component, resource.id, status, changes, reason))
        return status == "changed"

    def _report(self, result: Result) -> None:
        self.outcome.results.append(result)
        log_result(self.ctx.log, result)
        if self.progress:
            self.progress(self._index, self._total, result)

    def _rollback(self, exc: BaseException) -> None:
        undo = self.ctx.journal.undo()
        try:
            restored = self.checkpoint.restore()
        except RollbackError as failed:
            raise RollbackError(f"{exc}; rollback failed: {failed}") from exc
        reloaded = []
        for handler in dict.fromkeys(self.handlers_run):
            try:
                _run_handler(self.ctx, handler)
                reloaded.append(str(handler))
            except BarracudaError:
                pass  # the service was broken by the change itself; it is restored now
        parts = []
        if undo.undone:
            parts.append(f"undid {listed(undo.undone, 8)}")
        if restored:
            parts.append(f"restored {listed(restored)} from {self.checkpoint.directory}")
        if parts:
            sentence = "Rolled back: " + "; ".join(parts)
            if reloaded:
                sentence += f", then ran {', '.join(reloaded)}"
        else:
            sentence = "No file had been changed yet, nor anything else"
        left = [*undo.failed, *undo.kept]
        if left:
            detail = f"{sentence}. Could not undo: {listed(left, 5)}"
            raise RollbackError(f"{exc}. {detail}.") from exc
        raise ApplyError(f"{exc}. {sentence}.") from exc


def listed(items: list[str], shown: int = 3) -> str:
    """The first `shown` items, comma-separated, and how many more there are."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more
