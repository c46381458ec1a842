"""The incident log shared by the agents: one JSON object per line in
/var/log/barracuda/incidents.log with `time`, `check`, `evidence`, `action` and `result`
(the monitor, installer/agents/monitor/incidents.py, and the backup agent both write
through record_incident)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

INCIDENTS_LOG = "/var/log/barracuda/incidents.log"


def record_incident(check: str, evidence: str, action: str, result: str, *,
                    root: Path = Path("/"), when: datetime | None = None,
                    log: Path | None = None, **extra: Any) -> dict[str, Any]:
    """Append one incident to `log` (default: INCIDENTS_LOG under `root`) in a single write
    of one line, so concurrent writers never mix their lines, and return it."""
    entry: dict[str, Any] = {
        "time": (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "check": check, "evidence": evidence, "action": action, "result": result, **extra,
    }
    path = log or root / INCIDENTS_LOG.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)
    return entry


def read_incidents(root: Path = Path("/")) -> list[dict[str, Any]]:
    """Every incident recorded so far (lines that are not JSON are skipped)."""
    path = root / INCIDENTS_LOG.lstrip("/")
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            entries.append(value)
    return entries
