"""The monitor's memory between cycles and runs: /var/lib/barracuda/monitor.json (budgets,
FAILED marks, check states, last incident), written atomically, read-modify-written under
an flock so `barracuda monitor reset` never races a running cycle."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from installer.errors import LockError
from installer.fileops import write_atomic
from installer.lock import acquire


def empty() -> dict[str, Any]:
    return {"services": {}, "checks": {}, "last_incident": None, "mail": {}, "last_cycle": 0}


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return empty()
    except (OSError, ValueError):
        return empty()  # a damaged file costs only the history
    if not isinstance(data, dict):
        return empty()
    base = empty()
    base.update(data)
    return base


def save(path: Path, data: dict[str, Any]) -> None:
    body = json.dumps(data, indent=1, sort_keys=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, body.encode(), mode=0o600)


@contextmanager
def editing(path: Path, wait: float = 120.0) -> Iterator[dict[str, Any]]:
    """Load the state under its lock, yield it, save it when it changed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not acquire(fd, wait, step=0.1):
            raise LockError(f"{path} is locked by a monitor cycle; try again")
        data = load(path)
        before = copy.deepcopy(data)
        yield data
        if data != before:
            save(path, data)
    finally:
        os.close(fd)
