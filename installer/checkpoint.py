"""Checkpoints: the state of every managed path before a run changed it, so a failed run
(or a later `barracuda rollback`) puts each one back byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from installer.errors import RollbackError
from installer.fileops import symlink_atomic
from installer.target import Target

CHECKPOINTS = "/var/backups/barracuda/checkpoints"


@dataclass
class Checkpoint:
    target: Target
    directory: Path  # <root>/var/backups/barracuda/checkpoints/<run id>
    saved: dict[str, dict[str, object]] = field(default_factory=dict)

    def save(self, managed_path: str) -> None:
        """Remember `managed_path` as it is now (once per run: the first state wins)."""
        if managed_path in self.saved:
            return
        real = self.target.path(managed_path)
        entry: dict[str, object]
        try:
            st = real.lstat()
        except FileNotFoundError:
            entry = {"kind": "absent"}
        else:
            if stat.S_ISLNK(st.st_mode):
                entry = {"kind": "link", "to": os.readlink(real)}
            elif stat.S_ISREG(st.st_mode):
                copy = self.directory / "files" / managed_path.lstrip("/")
                copy.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                shutil.copy2(real, copy)
                entry = {"kind": "file", "mode": stat.S_IMODE(st.st_mode),
                         "uid": st.st_uid, "gid": st.st_gid}
            else:
                return  # directories are not replaced by a run
        self.saved[managed_path] = entry
        self._write_manifest()

    def _write_manifest(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        manifest = self.directory / "manifest.json"
        manifest.write_text(json.dumps(self.saved, indent=1, sort_keys=True) + "\n")

    def restore(self) -> list[str]:
        """Put every saved path back; returns the paths restored. RollbackError if any fails."""
        restored: list[str] = []
        failed: list[str] = []
        for managed_path, entry in reversed(list(self.saved.items())):
            real = self.target.path(managed_path)
            try:
                self._restore_one(real, managed_path, entry)
                restored.append(managed_path)
            except OSError as exc:
                failed.append(f"{managed_path} ({exc.strerror})")
        if failed:
            raise RollbackError(
                f"could not restore {', '.join(failed)}; the saved copies are in {self.directory}"
            )
        return restored

    def _restore_one(self, real: Path, managed_path: str, entry: dict[str, object]) -> None:
        kind = entry["kind"]
        if kind == "absent":
            if real.is_symlink() or real.is_file():
                real.unlink()
        elif kind == "link":
            symlink_atomic(real, str(entry["to"]))
        else:
            copy = self.directory / "files" / managed_path.lstrip("/")
            tmp = real.with_name(f".{real.name}.restore")
            shutil.copy2(copy, tmp)
            os.chmod(tmp, int(str(entry["mode"])))
            if os.geteuid() == 0:
                os.chown(tmp, int(str(entry["uid"])), int(str(entry["gid"])))
            os.replace(tmp, real)


def prune(target: Target, keep: int) -> None:
    """Keep the newest `keep` checkpoints (their names sort by time)."""
    base = target.path(CHECKPOINTS)
    if not base.is_dir():
        return
    runs = sorted(p for p in base.iterdir() if p.is_dir())
    for old in runs[:-keep] if keep > 0 else runs:
        shutil.rmtree(old, ignore_errors=True)
