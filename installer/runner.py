"""Running external commands: argv lists with timeouts, never a shell string."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

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


CHUNK = 1 << 20
Sink = Callable[[bytes], None]


@dataclass(frozen=True)
class PipeResult:
    """What each stage of a pipeline did: its argv, exit code and the tail of its stderr."""

    stages: tuple[Result, ...]

    @property
    def ok(self) -> bool:
        return all(stage.ok for stage in self.stages)

    def failure(self, subject: str = "") -> str:
        """The first failing stage in one line, e.g. `mariadb-dump of site exited 2: ...`
        ("" when all succeeded)."""
        of = f" of {subject}" if subject else ""
        for stage in self.stages:
            if not stage.ok:
                tail = " | ".join(line for line in stage.stderr.splitlines()[-3:] if line.strip())
                return f"{stage.argv[0]}{of} exited {stage.rc}" + (f": {tail}" if tail else "")
        return ""


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

    def pipeline(
        self,
        stages: Sequence[Sequence[str]],
        *,
        source: Path | None = None,
        sink: Sink | None = None,
        timeout: float = 300,
    ) -> PipeResult: ...


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

    def pipeline(
        self,
        stages: Sequence[Sequence[str]],
        *,
        source: Path | None = None,
        sink: Sink | None = None,
        timeout: float = 300,
    ) -> PipeResult:
        """`stage1 | stage2 | ...` without a shell: the first reads `source` (or nothing),
        the last writes into `sink` chunk by chunk (or nowhere). Every process is killed when
        the pipeline leaves early (error, timeout, signal); CommandError on a timeout or a
        missing program, otherwise the per-stage results (check `.ok`)."""
        env = dict(self.base_env)
        deadline = time.monotonic() + timeout
        shown = " | ".join(" ".join(argv) for argv in stages)
        log.debug("$ %s", shown)
        with contextlib.ExitStack() as stack:
            errs = [stack.enter_context(tempfile.TemporaryFile()) for _ in stages]
            procs = stack.enter_context(_killed_on_exit())
            upstream: IO[bytes] | int = subprocess.DEVNULL
            if source is not None:
                upstream = stack.enter_context(open(source, "rb"))
            for index, argv in enumerate(stages):
                last = index == len(stages) - 1
                out: Any = subprocess.PIPE if (not last or sink is not None) else subprocess.DEVNULL
                proc = _start([str(a) for a in argv], env, stdin=upstream, stdout=out,
                              stderr=errs[index])
                procs.append(proc)
                if index > 0 and not isinstance(upstream, int):
                    upstream.close()  # only this stage reads it now: its death stops the rest
                upstream = proc.stdout if proc.stdout is not None else subprocess.DEVNULL
            if sink is not None and not isinstance(upstream, int):
                while chunk := upstream.read(CHUNK):
                    sink(chunk)
                    if time.monotonic() > deadline:
                        raise CommandError(list(stages[-1]), -1,
                                           f"timed out after {timeout:.0f} s")
            results = []
            for index, proc in enumerate(procs):
                try:
                    rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    raise CommandError(list(stages[index]), -1,
                                       f"timed out after {timeout:.0f} s") from None
                errs[index].seek(0)
                stderr = errs[index].read().decode("utf-8", "replace")
                results.append(Result(tuple(str(a) for a in stages[index]), rc, "", stderr))
        return PipeResult(tuple(results))


def _start(argv: list[str], env: Mapping[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(argv, env=dict(env), **kwargs)  # argv, never a shell
    except FileNotFoundError:
        raise CommandError(argv, 127, f"{argv[0]}: command not found") from None


@contextlib.contextmanager
def _killed_on_exit() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started inside are killed when the block leaves early (error, signal)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)
            for stream in (proc.stdout, proc.stdin):
                if stream is not None:
                    stream.close()
