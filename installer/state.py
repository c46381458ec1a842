"""What barracuda wrote: the sha256 of every managed file, to spot an operator's edit."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from installer.fileops import write_atomic
from installer.target import Target

STATE_FILE = "/var/lib/barracuda/managed.json"


@dataclass
class ManagedState:
    path: Path
    hashes: dict[str, str] = field(default_factory=dict)
    dirty: bool = False

    @classmethod
    def load(cls, target: Target) -> ManagedState:
        path = target.path(STATE_FILE)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError):
            # A damaged state file only costs us edit detection: start afresh.
            data = {}
        hashes = data.get("files", {}) if isinstance(data, dict) else {}
        return cls(path, {str(k): str(v) for k, v in hashes.items()})

    def get(self, managed_path: str) -> str | None:
        return self.hashes.get(managed_path)

    def record(self, managed_path: str, sha256: str) -> None:
        if self.hashes.get(managed_path) != sha256:
            self.hashes[managed_path] = sha256
            self.dirty = True

    def forget(self, managed_path: str) -> None:
        if self.hashes.pop(managed_path, None) is not None:
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        body = json.dumps({"files": dict(sorted(self.hashes.items()))}, indent=1) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.path, body.encode(), mode=0o600)
        self.dirty = False
