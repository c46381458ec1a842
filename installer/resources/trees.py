"""Whole directory trees: a codebase placed once (copied from a directory or cloned with
git) and a tree that must be gone. A placed tree is never re-synced: after the first run
the code is the operator's."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from installer.errors import ApplyError
from installer.resources.base import Change, Context, Resource


@dataclass
class CodeTree(Resource):
    """`path` holds a codebase copied from `source` (a directory) or cloned from `git`
    (with `ref`), owned by `owner`:`fgroup` with directories `dir_mode` and files readable
    by the group only. It is staged beside `path` and renamed into place, so a failed copy
    or clone leaves nothing behind."""

    changes_environment = True

    path: str
    owner: str
    fgroup: str
    source: str = ""
    git: str = ""
    ref: str = ""
    dir_mode: int = 0o750
    require: str = ""  # a file the codebase must have (e.g. its index.php front controller)

    @property
    def id(self) -> str:
        return f"tree:{self.path}"

    @property
    def ok_reason(self) -> str:
        return "in place (never re-synced)"

    def check(self, ctx: Context) -> list[Change]:
        if ctx.facts.file(self.path).exists:
            return []
        origin = self.source or f"{self.git}" + (f" at {self.ref}" if self.ref else "")
        return [self.change("create", f"missing: placed from {origin}")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        real = ctx.target.path(self.path)
        stage = real.with_name(f".{real.name}.staging")
        if stage.exists():
            shutil.rmtree(stage)
        try:
            if self.git:
                argv = ["git", "clone", "--quiet", "--depth", "1"]
                if self.ref:
                    argv += ["--branch", self.ref]
                ctx.runner.run([*argv, "--", self.git, str(stage)], timeout=1800)
                shutil.rmtree(stage / ".git", ignore_errors=True)
            else:
                shutil.copytree(self.source, stage, symlinks=True)
            if self.require and not (stage / self.require).is_file():
                origin = self.source or self.git
                raise ApplyError(f"{origin} has no {self.require} at its top: not placed")
            self._own(ctx, stage)
            os.replace(stage, real)
            ctx.journal.did(f"placed {self.path}", lambda: shutil.rmtree(real, ignore_errors=True))
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise

    def _own(self, ctx: Context, tree: Path) -> None:
        account = ctx.facts.user(self.owner)
        gid = ctx.facts.group_id(self.fgroup)
        uid = account.uid if account else -1
        if ctx.target.live and (account is None or gid is None):
            raise ApplyError(f"cannot own {self.path}: no user {self.owner} or group "
                             f"{self.fgroup}")
        group = gid if gid is not None else -1
        for top, dirs, files in os.walk(tree):
            os.chmod(top, self.dir_mode)
            if uid >= 0:
                os.lchown(top, uid, group)
            for name in files + [d for d in dirs if Path(top, d).is_symlink()]:
                entry = Path(top, name)
                if uid >= 0:
                    os.lchown(entry, uid, group)
                if not entry.is_symlink():
                    # group-readable, never writable but by the owner; executables stay so
                    executable = entry.stat().st_mode & 0o100
                    os.chmod(entry, self.dir_mode if executable else self.dir_mode & 0o666)


@dataclass
class TreeAbsent(Resource):
    """A directory tree that must be gone. Only used after the tree was archived (the
    archive's path is in the run's summary), so nothing is lost silently. It is moved aside
    first and deleted only when the whole run passed: a failed run moves it back."""

    changes_environment = True

    path: str
    why: str = ""

    @property
    def id(self) -> str:
        return f"tree-absent:{self.path}"

    @property
    def ok_reason(self) -> str:
        return "absent"

    def check(self, ctx: Context) -> list[Change]:
        facts = ctx.facts.file(self.path)
        if not facts.exists:
            return []
        if facts.kind != "dir":
            raise ApplyError(f"{self.path} should be a directory to remove but is a {facts.kind}")
        return [self.change("remove", self.why or "must be gone")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        real = ctx.target.path(self.path)
        aside = real.with_name(f".{real.name}.removed-{os.getpid()}")
        os.rename(real, aside)
        ctx.journal.did(f"removed {self.path}", lambda: os.rename(aside, real))
        ctx.journal.at_commit(f"delete {aside}", lambda: shutil.rmtree(aside))
