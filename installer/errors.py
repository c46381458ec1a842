"""Typed errors. Only the CLI edge turns them into a message and an exit code."""

from __future__ import annotations

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_ROLLBACK_FAILED = 4
EXIT_PENDING = 5


class BarracudaError(Exception):
    """Base of every error the tool raises on purpose; its message is one line for the user."""

    exit_code = EXIT_FAILED


class UsageError(BarracudaError):
    exit_code = EXIT_USAGE


class ConfigError(BarracudaError):
    """A bad configuration file, key or value: `file:line: key: what is wrong; allowed: ...`."""

    exit_code = EXIT_CONFIG

    def __init__(self, message: str, *, path: str = "", line: int = 0, key: str = "") -> None:
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        what = f"{key}: " if key else ""
        super().__init__(f"{where}{what}{message}")
        self.path, self.line, self.key = path, line, key


class DataError(BarracudaError):
    """A broken file shipped with the tool (profile or template): a defect, not a user mistake."""


class PreflightError(BarracudaError):
    """The machine is not in a state where a run may start; nothing was changed."""


class LockError(BarracudaError):
    """Another run holds the lock."""


class CommandError(BarracudaError):
    """An external command failed or timed out."""

    def __init__(self, argv: list[str], rc: int, output: str) -> None:
        tail = " | ".join(line for line in output.strip().splitlines()[-3:] if line.strip())
        super().__init__(f"{' '.join(argv)} exited {rc}" + (f": {tail}" if tail else ""))
        self.argv, self.rc, self.output = argv, rc, output


class ApplyError(BarracudaError):
    """A change failed and was rolled back (the message says what was restored)."""


class RollbackError(BarracudaError):
    """A change failed and the rollback failed too: manual action is needed."""

    exit_code = EXIT_ROLLBACK_FAILED


class Interrupted(BarracudaError):
    """SIGINT or SIGTERM arrived during a run."""


class ChangesPending(BarracudaError):
    """`--check` found changes to make; the plan was shown and nothing was changed."""

    exit_code = EXIT_PENDING


class Declined(BarracudaError):
    """The operator answered no when asked to apply; nothing was changed."""
