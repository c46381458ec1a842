"""Running external commands: argv lists with timeouts, never a shell string."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from installer.errors import CommandError

log = logging.getLogger("barracuda.run")

CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    rc: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).strip()


class Runner(Protocol):
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 300,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result: ...


@dataclass
class SubprocessRunner:
    """Runs commands for real, logging each one (secrets are redacted by the log filter)."""

    base_env: dict[str, str] = field(
        default_factory=lambda: {
            "PATH": CLEAN_PATH,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "DEBIAN_FRONTEND": "noninteractive",
            "HOME": os.environ.get("HOME", "/root"),
        }
    )

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 300,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        args = [str(a) for a in argv]
        log.debug("$ %s", " ".join(args))
        try:
            proc = subprocess.run(  # argv list, never a shell
                args,
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**self.base_env, **(env or {})},
                check=False,
                stdin=None if input is not None else subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            result = Result(tuple(args), 127, "", f"{args[0]}: command not found")
            if check:
                raise CommandError(args, 127, result.stderr) from exc
            return result
        except subprocess.TimeoutExpired as exc:
            raise CommandError(args, -1, f"timed out after {timeout:.0f} s") from exc
        result = Result(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        if result.output:
            log.debug("%s", result.output[-4000:])
        if check and not result.ok:
            raise CommandError(args, result.rc, result.output)
        return result
