"""Files, directories, symlinks and paths that must be absent."""

from __future__ import annotations

import difflib
import functools
import hashlib
import os
import shutil
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.errors import ApplyError
from installer.fileops import symlink_atomic, write_atomic
from installer.resources.base import Change, Context, Resource
from installer.templates import render

HEADER = "Managed by barracuda: local edits are reported and replaced; use the include hooks."


def with_header(text: str, comment: str) -> str:
    """`text` with the managed-by header in the file's comment syntax ("" = none)."""
    if not comment:
        return text
    if comment == "php":
        body = text.removeprefix("<?php").lstrip("\n")
        return f"<?php\n// {HEADER}\n{body}"
    return f"{comment} {HEADER}\n{text}"


def _ids(ctx: Context, owner: str, group: str, *, strict: bool = True) -> tuple[int, int]:
    """uid and gid for a file; -1 (leave as is) where a --root tree cannot resolve them, or
    (strict=False, while planning) where a package that creates them is not installed yet."""
    account = ctx.facts.user(owner)
    gid = ctx.facts.group_id(group)
    if account is None or gid is None:
        if ctx.target.live and strict:
            missing = owner if account is None else group
            raise ApplyError(f"cannot set the owner of a file: no user or group {missing!r}")
        return -1, -1
    return account.uid, gid


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _diff(path: str, old: bytes, new: bytes) -> str:
    try:
        old_text, new_text = old.decode(), new.decode()
    except UnicodeDecodeError:
        return "(binary content differs)"
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=f"{path} (now)",
        tofile=f"{path} (wanted)",
    )
    return "".join(lines)


def _ownership_changes(
    res: Resource, ctx: Context, facts_mode: int, facts_uid: int, facts_gid: int,
    mode: int, owner: str, group: str,
) -> list[Change]:
    changes: list[Change] = []
    if facts_mode != mode:
        changes.append(res.change("chmod", f"mode {facts_mode:04o} -> {mode:04o}"))
    uid, gid = _ids(ctx, owner, group, strict=False)
    if (uid >= 0 and facts_uid != uid) or (gid >= 0 and facts_gid != gid):
        changes.append(res.change("chown", f"owner -> {owner}:{group}"))
    elif uid < 0 and ctx.target.live:
        changes.append(res.change("chown", f"owner {owner}:{group} does not exist yet"))
    return changes


@dataclass
class File(Resource):
    path: str
    content: str = ""
    template: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    mode: int = 0o644
    owner: str = "root"
    fgroup: str = "root"
    comment: str = "#"  # header comment syntax: "#", ";", "//", "php", or "" for no header
    secret: bool = False  # never show a diff
    managed: bool = True  # track its hash to detect an operator's edit

    @property
    def id(self) -> str:
        return f"file:{self.path}"

    @functools.cached_property
    def wanted(self) -> bytes:
        text = render(self.template, self.context) if self.template else self.content
        return with_header(text, self.comment).encode()

    @property
    def ok_reason(self) -> str:
        return f"content, mode {self.mode:04o} and owner {self.owner}:{self.fgroup} as wanted"

    def paths(self, ctx: Context) -> list[str]:
        return [self.path]

    def _local_edit(self, ctx: Context, current_hash: str) -> bool:
        recorded = ctx.state.get(self.path)
        return self.managed and recorded is not None and recorded != current_hash

    def check(self, ctx: Context) -> list[Change]:
        facts = ctx.facts.file(self.path)
        wanted_hash = hashlib.sha256(self.wanted).hexdigest()
        if not facts.exists:
            diff = "" if self.secret else _diff(self.path, b"", self.wanted)
            return [self.change("create", "missing", diff)]
        if facts.kind != "file":
            return [self.change("replace", f"is a {facts.kind}, not a file (it is moved aside)")]
        changes: list[Change] = []
        if facts.sha256 != wanted_hash:
            current = ctx.target.path(self.path).read_bytes()
            diff = "(secret content not shown)" if self.secret else _diff(
                self.path, current, self.wanted
            )
            if self._local_edit(ctx, facts.sha256):
                if ctx.keep_local_edits:
                    ctx.note(f"{self.path} was edited locally; left alone (--keep-local-edits)")
                else:
                    changes.append(self.change(
                        "update", "edited locally since barracuda wrote it: the edited copy is "
                        "kept beside it", diff,
                    ))
            elif self.managed and ctx.state.get(self.path) is None:
                changes.append(self.change(
                    "update", "replaces a file barracuda did not write (the original is kept "
                    "as .barracuda-orig)", diff,
                ))
            else:
                changes.append(self.change("update", "content differs", diff))
        changes += _ownership_changes(
            self, ctx, facts.mode, facts.uid, facts.gid, self.mode, self.owner, self.fgroup
        )
        return changes

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        real = ctx.target.path(self.path)
        actions = {c.action for c in changes}
        if actions & {"create", "update", "replace"}:
            if "replace" in actions:
                _move_aside(ctx, self.path)
            elif "update" in actions and real.is_file():
                current = real.read_bytes()
                if self._local_edit(ctx, hashlib.sha256(current).hexdigest()):
                    keep = real.with_name(f"{real.name}.barracuda-local-{_stamp()}")
                    shutil.copy2(real, keep)
                    ctx.note(f"{self.path} was edited locally; your version is kept as {keep}")
                elif self.managed and ctx.state.get(self.path) is None:
                    orig = real.with_name(f"{real.name}.barracuda-orig")
                    if not orig.exists():
                        shutil.copy2(real, orig)
            uid, gid = _ids(ctx, self.owner, self.fgroup)
            write_atomic(real, self.wanted, mode=self.mode, uid=uid, gid=gid)
            if self.managed:
                ctx.state.record(self.path, hashlib.sha256(self.wanted).hexdigest())
            return
        if "chmod" in actions:
            os.chmod(real, self.mode)
        if "chown" in actions:
            uid, gid = _ids(ctx, self.owner, self.fgroup)
            os.chown(real, uid, gid)


@dataclass
class Directory(Resource):
    path: str
    mode: int = 0o755
    owner: str = "root"
    fgroup: str = "root"

    @property
    def id(self) -> str:
        return f"dir:{self.path}"

    @property
    def ok_reason(self) -> str:
        return f"exists with mode {self.mode:04o} and owner {self.owner}:{self.fgroup}"

    def check(self, ctx: Context) -> list[Change]:
        facts = ctx.facts.file(self.path)
        if not facts.exists:
            return [self.change("create", "missing")]
        if facts.kind != "dir":
            raise ApplyError(f"{self.path} should be a directory but is a {facts.kind}; move it")
        return _ownership_changes(
            self, ctx, facts.mode, facts.uid, facts.gid, self.mode, self.owner, self.fgroup
        )

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        real = ctx.target.path(self.path)
        if not real.exists():
            top = real
            while not top.parent.exists():
                top = top.parent
            real.mkdir(parents=True)
            ctx.journal.did(f"created directory {self.path}",
                            lambda: shutil.rmtree(top, ignore_errors=True))
        else:
            before = real.stat()
            ctx.journal.did(f"changed mode/owner of {self.path}",
                            lambda: _put_back(real, before))
        os.chmod(real, self.mode)
        uid, gid = _ids(ctx, self.owner, self.fgroup)
        if uid >= 0:
            os.chown(real, uid, gid)


@dataclass
class Symlink(Resource):
    path: str
    to: str

    @property
    def id(self) -> str:
        return f"link:{self.path}"

    @property
    def ok_reason(self) -> str:
        return f"points to {self.to}"

    def paths(self, ctx: Context) -> list[str]:
        return [self.path]

    def check(self, ctx: Context) -> list[Change]:
        facts = ctx.facts.file(self.path)
        if not facts.exists:
            return [self.change("create", f"missing; -> {self.to}")]
        if facts.kind != "link":
            return [self.change("replace", f"is a {facts.kind} (moved aside); -> {self.to}")]
        if facts.link != self.to:
            return [self.change("update", f"points to {facts.link}; -> {self.to}")]
        return []

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if any(c.action == "replace" for c in changes):
            _move_aside(ctx, self.path)
        symlink_atomic(ctx.target.path(self.path), self.to)


@dataclass
class Absent(Resource):
    """A path that must not exist (a distribution default we disable). A symlink is removed;
    a regular file is moved to the backup directory, never deleted."""

    path: str
    why: str = ""

    @property
    def id(self) -> str:
        return f"absent:{self.path}"

    @property
    def ok_reason(self) -> str:
        return "absent"

    def paths(self, ctx: Context) -> list[str]:
        return [self.path]

    def check(self, ctx: Context) -> list[Change]:
        facts = ctx.facts.file(self.path)
        if not facts.exists:
            return []
        if facts.kind == "dir":
            raise ApplyError(f"{self.path} should be absent but is a directory; move it")
        return [self.change("remove", self.why or "must be absent")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        real = ctx.target.path(self.path)
        if real.is_symlink():
            real.unlink()
        else:
            _move_aside(ctx, self.path)
        ctx.state.forget(self.path)


def _move_aside(ctx: Context, path: str) -> Path:
    """Move whatever is at `path` into the run's backup directory and say where."""
    real = ctx.target.path(path)
    dest = ctx.backup_dir / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(real), dest)
    ctx.note(f"{path} was moved to {dest}")
    return dest


def _put_back(path: Path, before: os.stat_result) -> None:
    """A directory's mode and owner as they were."""
    os.chmod(path, stat.S_IMODE(before.st_mode))
    if os.geteuid() == 0:
        os.chown(path, before.st_uid, before.st_gid)
