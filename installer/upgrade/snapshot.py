"""`barracuda rollback`: put back the configuration snapshot of the last run that changed
something (its checkpoint holds every managed file as it was before), validate it, reload
what read the restored files, and switch the tool back to the environment it ran before."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from installer.apply import _run_handler
from installer.checkpoint import CHECKPOINTS, Checkpoint
from installer.converge import ROLLED_BACK, RUN_FILE, SNAPSHOT_DIR
from installer.errors import ApplyError, BarracudaError, RollbackError
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


def last_snapshot(target: Target) -> Path | None:
    """The newest checkpoint not rolled back yet (names start with the run's time)."""
    base = target.path(CHECKPOINTS)
    if not base.is_dir():
        return None
    runs = [p for p in base.iterdir()
            if p.is_dir() and not p.name.endswith(ROLLED_BACK) and _manifests(p)]
    runs.sort(key=lambda p: (p.name[:15], (_manifests(p)[-1] / "manifest.json").stat().st_mtime))
    return runs[-1] if runs else None


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


def restore(ctx: Context, directory: Path, components: list[Component]) -> Restored:
    """Restore the checkpoint in `directory` (its snapshot and its own files), then validate
    and reload only what read a file that differed; mark it rolled back."""
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
    for checkpoint in checkpoints:
        checkpoint.restore()
    paths = sorted(touched)
    handlers: list[Handler] = []
    for component in components:
        hit = [r for r in component.resources if touched & set(r.paths(ctx))]
        if not hit:
            continue
        for validator in component.validators:
            if validator.live_only and not ctx.target.live:
                continue
            result = ctx.runner.run(validator.argv, check=False, timeout=120)
            if not result.ok:
                last = result.output.splitlines()[-1] if result.output else f"rc {result.rc}"
                raise RollbackError(f"restored {len(paths)} files from {directory}, but "
                                    f"{validator.what} fails on them: {last}; nothing reloaded")
        if ctx.services is None:
            continue  # --root: nothing runs there
        for resource in hit:
            handlers.extend(h for h in resource.notify if h not in handlers)
    for handler in handlers:
        try:
            _run_handler(ctx, handler)
        except BarracudaError as exc:
            raise ApplyError(f"restored {len(paths)} files from {directory}, but {handler} "
                             f"failed: {exc}") from exc
    info = run_info(directory)
    directory.rename(directory.with_name(directory.name + ROLLED_BACK))
    return Restored(directory, paths, handlers, str(info.get("tool_env_before", "")))
