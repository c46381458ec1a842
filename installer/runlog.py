"""Run logs under /var/log/barracuda: one file per run, saying each change and its reason
(log_result), and versions.log, one line per install or upgrade that changed something.
Secrets registered with the Redactor never reach a log."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from installer.target import Target

LOG_DIR = "/var/log/barracuda"


@dataclass
class Redactor(logging.Filter):
    secrets: set[str] = field(default_factory=set)

    def add(self, secret: str) -> None:
        if len(secret) >= 6:
            self.secrets.add(secret)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "********")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        return True


def prune_run_logs(directory: Path, keep: int) -> None:
    """Keep the newest `keep` run logs (versions.log and other logs are not run logs)."""
    runs = sorted(directory.glob("*-[0-9]*-[0-9]*.log"), key=lambda p: p.stat().st_mtime)
    for old in runs[: max(0, len(runs) - keep)]:
        old.unlink(missing_ok=True)


def start_run_log(target: Target, command: str, redactor: Redactor, keep: int = 200) -> Path:
    """Send the `barracuda` logger to <root>/var/log/barracuda/<command>-<timestamp>.log."""
    directory = target.path(LOG_DIR)
    directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    prune_run_logs(directory, keep - 1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = directory / f"{command}-{stamp}.log"
    suffix = 1
    while path.exists():
        suffix += 1
        path = directory / f"{command}-{stamp}-{suffix}.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    log_to(handler, logging.DEBUG)
    return path


def log_to(handler: logging.Handler, level: int) -> None:
    """Make `handler` the only destination of the `barracuda` logger (closing the others)."""
    logger = logging.getLogger("barracuda")
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class _Change(Protocol):
    @property
    def action(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def executed(self) -> bool: ...


class _Result(Protocol):
    @property
    def component(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def changes(self) -> Sequence[_Change]: ...


def log_result(logger: logging.Logger, result: _Result) -> None:
    """What one resource of a run did, for the run log: each change with its action and
    reason (diffs are left out: they may hold secrets no Redactor knows), a failure with its
    error; an unchanged resource at DEBUG."""
    where = f"[{result.component}] {result.resource}"
    if result.status == "failed":
        logger.error("%s: failed: %s", where, result.reason)
    elif result.status == "ok":
        logger.debug("%s: ok (%s)", where, result.reason)
    for change in result.changes:
        done = "changed" if change.executed else "planned only"
        logger.info("%s: %s: %s: %s", where, done, change.action, change.reason)


def _fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)


def append_versions(target: Target, fields: dict[str, str], *, changed: bool = True) -> bool:
    """One line per install or upgrade: time, then key=value pairs. A run that changed
    nothing adds a line only when what it records differs from the last line (another
    channel followed, another tool or package version, another manifest source); returns
    whether a line was written."""
    directory = target.path(LOG_DIR)
    directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    path = directory / "versions.log"
    if not changed:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        if lines and _fields(lines[-1]) == {k: str(v) for k, v in fields.items()}:
            return False
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    line = " ".join([stamp, *(f"{k}={v}" for k, v in fields.items())])
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return True
