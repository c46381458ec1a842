"""Backup sets on disk: /data/disk/arch/sql/<host>-<YYYYmmdd-HHMMSS>/ (UTC), 0700, holding
one <database>.sql.zst per database (0600), manifest.json, and, until the set is complete,
an INCOMPLETE marker. A set is good only when it is complete and its last verification
passed; an incomplete set (killed, disk full, failed dump) is never counted as good."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from installer.database.dump import BackupError, DumpRecord
from installer.fileops import write_atomic

STAMP = "%Y%m%d-%H%M%S"
MANIFEST = "manifest.json"
INCOMPLETE = "INCOMPLETE"
FORMAT = 1
_NAME = re.compile(r"^(?P<host>[A-Za-z0-9._-]+)-(?P<stamp>\d{8}-\d{6})$")
STATUSES = ("good", "unverified", "failed", "incomplete")


def stamp_of(when: datetime) -> str:
    return when.astimezone(UTC).strftime(STAMP)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, STAMP).replace(tzinfo=UTC)


@dataclass
class BackupSet:
    path: Path
    host: str
    stamp: str
    manifest: dict[str, Any] | None

    @property
    def when(self) -> datetime:
        return parse_stamp(self.stamp)

    @property
    def incomplete(self) -> bool:
        return ((self.path / INCOMPLETE).exists() or self.manifest is None
                or self.manifest.get("status") != "complete")

    @property
    def status(self) -> str:
        if self.incomplete:
            return "incomplete"
        verification = (self.manifest or {}).get("verification")
        if not verification:
            return "unverified"
        return "good" if verification.get("ok") else "failed"

    @property
    def good(self) -> bool:
        return self.status == "good"

    @property
    def records(self) -> list[DumpRecord]:
        return [DumpRecord.from_dict(r) for r in (self.manifest or {}).get("databases", [])]

    def record_for(self, database: str) -> DumpRecord | None:
        return next((r for r in self.records if r.database == database), None)

    @property
    def size(self) -> int:
        """Bytes on disk of every file in the set."""
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest
        write_manifest(self.path, manifest)

    def as_dict(self) -> dict[str, Any]:
        manifest = self.manifest or {}
        return {
            "timestamp": self.stamp, "time": self.when.isoformat(), "path": str(self.path),
            "host": self.host, "status": self.status, "size": self.size,
            "databases": [r.database for r in self.records] if manifest else [],
            "verification": manifest.get("verification"),
            "server_version": manifest.get("server_version"), "error": manifest.get("error"),
        }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    write_atomic(directory / MANIFEST,
                 (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(), mode=0o600)


def read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def list_sets(base: Path) -> list[BackupSet]:
    """Every backup set under `base`, oldest first."""
    if not base.is_dir():
        return []
    found = []
    for entry in base.iterdir():
        match = _NAME.match(entry.name)
        if not match or not entry.is_dir() or entry.is_symlink():
            continue
        found.append(BackupSet(entry, match["host"], match["stamp"], read_manifest(entry)))
    return sorted(found, key=lambda s: (s.stamp, s.path.name))


def new_set(base: Path, host: str, when: datetime, started: str) -> BackupSet:
    """Create the (0700) directory of a new set, marked incomplete until `complete`."""
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(base, 0o700)
    stamp = stamp_of(when)
    path = base / f"{host}-{stamp}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        raise BackupError(f"{path} exists already: one backup per second at most") from None
    os.chmod(path, 0o700)
    write_atomic(path / INCOMPLETE, f"started {started} by PID {os.getpid()}\n".encode(),
                 mode=0o600)
    return BackupSet(path, host, stamp, None)


def complete(backup: BackupSet, manifest: dict[str, Any]) -> None:
    """Write the final manifest, then drop the marker: a crash between the two still reads
    as incomplete."""
    backup.save_manifest({**manifest, "status": "complete"})
    (backup.path / INCOMPLETE).unlink(missing_ok=True)
    fd = os.open(backup.path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(backup: BackupSet) -> None:
    shutil.rmtree(backup.path)
