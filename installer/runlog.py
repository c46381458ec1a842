"""Run logs under /var/log/barracuda: one file per run, and versions.log, one line per
install or upgrade. Secrets registered with the Redactor never reach a log."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

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


def append_versions(target: Target, fields: dict[str, str]) -> None:
    """One line per install or upgrade: time, then key=value pairs."""
    directory = target.path(LOG_DIR)
    directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    line = " ".join([stamp, *(f"{k}={v}" for k, v in fields.items())])
    with (directory / "versions.log").open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
