"""The tree a run builds: `/` on a real machine, or the directory given with --root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Target:
    root: Path = Path("/")

    @property
    def live(self) -> bool:
        """True when the run changes this machine (packages and services are executed)."""
        return self.root.resolve() == Path("/")

    def path(self, absolute: str) -> Path:
        """Where an absolute path of the managed machine is, inside this target."""
        if not absolute.startswith("/"):
            raise ValueError(f"expected an absolute path, got {absolute!r}")
        return self.root / absolute.lstrip("/")
