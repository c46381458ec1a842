"""`barracuda backup list/verify` as a user runs them, on a --root tree (no server needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from installer.agents.backup.store import MANIFEST

BASE = "data/disk/arch/sql"


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "installer.cli.barracuda", "backup", *args,
                           "--root", str(root)], capture_output=True, text=True, check=False)


def fake_set(root: Path, name: str, *, verified: bool | None, complete: bool = True) -> Path:
    path = root / BASE / name
    path.mkdir(parents=True)
    (path / "site.sql.zst").write_bytes(b"x" * 2048)
    manifest: dict[str, Any] = {"format": 1, "status": "complete" if complete else "incomplete",
                "databases": [{"database": "site", "file": "site.sql.zst", "size": 2048,
                               "sha256": "0" * 64, "started": "", "finished": "",
                               "seconds": 0.1, "rows": {}}]}
    if verified is not None:
        manifest["verification"] = {"time": "2026-01-01T01:16:00+00:00", "ok": verified,
                                    "problems": [], "drill": False}
    (path / MANIFEST).write_text(json.dumps(manifest))
    if not complete:
        (path / "INCOMPLETE").write_text("started\n")
    return path


def test_list_shows_time_size_and_state(tmp_path: Path) -> None:
    empty = cli(tmp_path, "list")
    assert empty.returncode == 0 and empty.stdout.startswith("no backups in ")
    fake_set(tmp_path, "web1-20260101-011500", verified=True)
    fake_set(tmp_path, "web1-20260102-011500", verified=False)
    fake_set(tmp_path, "web1-20260103-011500", verified=None)
    fake_set(tmp_path, "web1-20260104-011500", verified=None, complete=False)
    (tmp_path / BASE / "pre-restore").mkdir()
    out = cli(tmp_path, "list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("20260101-011500  2026-01-01 01:15 UTC")
    assert "verified 2026-01-01T01:16:00+00:00" in lines[0]
    assert "FAILED verification" in lines[1]
    assert "not verified" in lines[2]
    assert lines[3].endswith("INCOMPLETE")
    listed = json.loads(cli(tmp_path, "list", "--json").stdout)
    assert [b["status"] for b in listed["backups"]] == ["good", "failed", "unverified",
                                                         "incomplete"]


def test_verify_without_backups_and_bad_clock_are_usage_errors(tmp_path: Path) -> None:
    none = cli(tmp_path, "verify")
    assert none.returncode == 2 and "error: no backups in " in none.stderr
    bad = cli(tmp_path, "run", "--now", "yesterday")
    assert bad.returncode == 2 and '--now: bad value "yesterday": expected an ISO time' in \
        bad.stderr
    fake_set(tmp_path, "web1-20260101-011500", verified=True)
    vague = cli(tmp_path, "verify", "2027")
    assert vague.returncode == 2 and "2027: matches 0 backups" in vague.stderr
