"""One run at a time: an fcntl lock held for the whole run; the holder's PID is in the file."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from installer.errors import LockError

LOCK_FILE = "/run/barracuda.lock"


def holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def is_held(path: Path) -> bool:
    """True while another process holds the lock (agents stand aside then)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def acquire(fd: int, wait: float, step: float = 0.2) -> bool:
    """Take an exclusive flock on `fd`, waiting up to `wait` seconds; False if still held."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(step)


@contextmanager
def holding(path: Path, wait: float) -> Iterator[bool]:
    """Yield True while this process holds the lock at `path` (its PID written in it), or
    False when another process still held it after `wait` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not acquire(fd, wait):
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield True
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def locked(path: Path, wait: float = 10.0) -> Iterator[None]:
    """Hold the lock at `path`; wait up to `wait` seconds, then fail naming the holder."""
    with holding(path, wait) as held:
        if not held:
            raise LockError(f"another barracuda run (PID {holder(path)}) holds {path}; "
                            "try again when it has finished")
        yield
