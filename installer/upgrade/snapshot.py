"""`barracuda rollback`: put back the configuration snapshot of the last run that changed
something (its checkpoint holds every managed file as it was before), validate it, reload
what read the restored files, and switch the tool back to the environment it ran before."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from installer.apply import _run_handler, listed
from installer.checkpoint import CHECKPOINTS, Checkpoint
from installer.converge import ROLLED_BACK, RUN_FILE, SNAPSHOT_DIR
from installer.errors import ApplyError, BarracudaError, RollbackError, UsageError
from installer.plan import Component
from installer.resources.base import Context, Handler
from installer.target import Target


@dataclass
class Restored:
    directory: Path
    paths: list[str]
    handlers: list[Handler]
    tool_env: str  # the environment the snapshot's run started from ("" when unknown)


def _manifests(directory: Path) -> list[Path]:
    """The checkpoint folders of a run: its snapshot (every managed file) and its own."""
    return [d for d in (directory / SNAPSHOT_DIR, directory) if (d / "manifest.json").is_file()]


def runs(target: Target) -> list[Path]:
    """The checkpoint folders of the runs that changed something, rolled back or not,
    oldest first (names start with the run's time)."""
    base = target.path(CHECKPOINTS)
    if not base.is_dir():
        return []
    found = [p for p in base.iterdir() if p.is_dir() and _manifests(p)]
    found.sort(key=lambda p: (p.name[:15], (_manifests(p)[-1] / "manifest.json").stat().st_mtime))
    return found


def rolled_back(directory: Path) -> bool:
    return directory.name.endswith(ROLLED_BACK)


def run_name(directory: Path) -> str:
    return directory.name.removesuffix(ROLLED_BACK)


def last_snapshot(target: Target) -> Path | None:
    """The newest checkpoint not rolled back yet."""
    candidates = [p for p in runs(target) if not rolled_back(p)]
    return candidates[-1] if candidates else None


def choose(target: Target, name: str | None = None) -> Path:
    """The run `barracuda rollback` undoes: `name`, else the newest run. A run that was
    rolled back already (it failed and undid itself, or a rollback put it back) is refused:
    an older run is undone only when named."""
    found = runs(target)
    base = target.path(CHECKPOINTS)
    if not found:
        raise UsageError(f"nothing to roll back: no configuration snapshot in {base}")
    open_runs = [run_name(p) for p in found if not rolled_back(p)]
    hint = (f"; runs that can be rolled back, newest first: {listed(open_runs[::-1], 5)} "
            "(name one with --run)" if open_runs else "; no other run can be rolled back")
    if name is None:
        chosen = found[-1]
    else:
        named = [p for p in found if run_name(p) == name]
        if not named:
            raise UsageError(f"no run named {name} in {base}{hint}")
        chosen = named[-1]
    if rolled_back(chosen):
        what = "the last run, " if name is None else ""
        raise UsageError(f"{what}{run_name(chosen)} was rolled back already (it failed and "
                         "undid itself, or a rollback put it back): nothing of it is left to "
                         f"undo{hint}")
    return chosen


def run_info(directory: Path) -> dict[str, object]:
    try:
        data = json.loads((directory / RUN_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def differs(checkpoint: Checkpoint, managed_path: str, entry: dict[str, object]) -> bool:
    """True when the path is not as the checkpoint saved it (restoring it changes it)."""
    real = checkpoint.target.path(managed_path)
    kind = entry["kind"]
    if kind == "absent":
        return real.exists() or real.is_symlink()
    if kind == "link":
        return not real.is_symlink() or os.readlink(real) != entry["to"]
    try:
        st = real.lstat()
    except FileNotFoundError:
        return True
    if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != entry["mode"]:
        return True
    copy = checkpoint.directory / "files" / managed_path.lstrip("/")
    return real.read_bytes() != copy.read_bytes()


@dataclass
class Preview:
    """What restoring a run's checkpoint would do, before anything is done."""

    checkpoints: list[Checkpoint]
    paths: list[str]  # every managed path that differs from the checkpoint
    handlers: list[Handler]  # the reloads and restarts of what read those files
    hit: list[Component]  # the components whose files differ (their validators run)


def preview(ctx: Context, directory: Path, components: list[Component]) -> Preview:
    """What `restore` would put back and reload; changes nothing."""
    checkpoints = []
    for folder in _manifests(directory):
        try:
            saved = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RollbackError(f"{folder}/manifest.json is unreadable: {exc}") from exc
        checkpoints.append(Checkpoint(ctx.target, folder, saved=dict(saved)))
    if not checkpoints:
        raise RollbackError(f"{directory} holds no manifest.json")
    touched = {path for cp in checkpoints for path, entry in cp.saved.items()
               if differs(cp, path, entry)}
    handlers: list[Handler] = []
    hit: list[Component] = []
    for component in components:
        resources = [r for r in component.resources if touched & set(r.paths(ctx))]
        if not resources:
            continue
        hit.append(component)
        if ctx.services is None:
            continue  # --root: nothing runs there
        for resource in resources:
            handlers.extend(h for h in resource.notify if h not in handlers)
    return Preview(checkpoints, sorted(touched), handlers, hit)


def restore(ctx: Context, directory: Path, components: list[Component]) -> Restored:
    """Restore the checkpoint in `directory` (its snapshot and its own files), then validate
    and reload only what read a file that differed; mark it rolled back."""
    plan = preview(ctx, directory, components)
    paths, handlers = plan.paths, plan.handlers
    for checkpoint in plan.checkpoints:
        checkpoint.restore()
    for component in plan.hit:
        for validator in component.validators:
            if validator.live_only and not ctx.target.live:
                continue
            result = ctx.runner.run(validator.argv, check=False, timeout=120)
            if not result.ok:
                last = result.output.splitlines()[-1] if result.output else f"rc {result.rc}"
                raise RollbackError(f"restored {len(paths)} files from {directory}, but "
                                    f"{validator.what} fails on them: {last}; nothing reloaded")
    for handler in handlers:
        try:
            _run_handler(ctx, handler)
        except BarracudaError as exc:
            raise ApplyError(f"restored {len(paths)} files from {directory}, but {handler} "
                             f"failed: {exc}") from exc
    info = run_info(directory)
    directory.rename(directory.with_name(directory.name + ROLLED_BACK))
    return Restored(directory, paths, handlers, str(info.get("tool_env_before", "")))
