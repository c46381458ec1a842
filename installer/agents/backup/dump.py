"""One database to one compressed file and back: the library every backup path uses.

    record = dump_database(runner, "site_db", Path("/x/site_db.sql.zst"))
    problem = verify_dump(Path("/x/site_db.sql.zst"), record)   # None when sound
    restore_database(runner, Path("/x/site_db.sql.zst"), "site_db_copy")

A dump is `mariadb-dump --single-transaction --routines --triggers --events` of ONE database
(no CREATE DATABASE or USE inside, so it restores under any name), piped into multi-threaded
`zstd`; Python only reads the compressed stream, hashing it while writing it to a hidden
`.NAME.partial` file that becomes NAME (mode 0600) only when both commands succeeded. The
runner answers the SQL questions (row counts, existence); the two streaming pipelines are
started here with argv lists, never a shell, with the runner's environment."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from installer.errors import BarracudaError
from installer.runner import CLEAN_PATH, Runner

SUFFIX = ".sql.zst"
# mariadb-dump's last line when it finished (it is not written when the dump stops early).
COMPLETION_MARKER = b"-- Dump completed"
DUMP_OPTIONS = ("--single-transaction", "--routines", "--triggers", "--events", "--quick",
                "--hex-blob", "--max-allowed-packet=1G", "--default-character-set=utf8mb4")
CHUNK = 1 << 20
DEFAULT_TIMEOUT = 6 * 3600.0
_DEFAULT_ENV = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/root"}


class BackupError(BarracudaError):
    """A dump, verification or restore failed; nothing was left named as a good file."""


class NoSpaceError(BackupError):
    """The backup would not fit in the free space of its filesystem."""


class Recorded(Protocol):
    """What verify_dump needs from a record (a DumpRecord, or one read back from a manifest)."""

    @property
    def size(self) -> int: ...

    @property
    def sha256(self) -> str: ...


@dataclass(frozen=True)
class DumpRecord:
    database: str
    file: str  # the file name, relative to the backup directory
    size: int  # bytes of the compressed file
    sha256: str  # of the compressed file
    started: str  # ISO 8601, UTC
    finished: str
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)  # table -> COUNT(*) just before

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DumpRecord:
        try:
            return cls(
                database=str(data["database"]), file=str(data["file"]), size=int(data["size"]),
                sha256=str(data["sha256"]), started=str(data["started"]),
                finished=str(data["finished"]), seconds=float(data["seconds"]),
                rows={str(k): int(v) for k, v in dict(data.get("rows") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupError(f"bad dump record {dict(data)!r}: {exc}") from None


# --------------------------------------------------------------------------- SQL helpers


def quote_name(name: str) -> str:
    """`name` as a MariaDB identifier."""
    return "`" + name.replace("`", "``") + "`"


def quote_text(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql(runner: Runner, query: str, *, database: str | None = None,
        timeout: float = 600) -> list[list[str]]:
    """Rows of `query` run as root over the socket (tab-separated batch output)."""
    argv = ["mariadb", "--batch", "--skip-column-names", "-e", query]
    if database is not None:
        argv.insert(1, f"--database={database}")
    result = runner.run(argv, timeout=timeout, check=False)
    if not result.ok:
        raise BackupError(f"query failed ({query[:60]}): {result.output[-300:]}")
    return [line.split("\t") for line in result.stdout.splitlines() if line]


def database_exists(runner: Runner, database: str) -> bool:
    rows = sql(runner, "SELECT COUNT(*) FROM information_schema.SCHEMATA "
                       f"WHERE SCHEMA_NAME = {quote_text(database)}")
    return bool(rows) and rows[0][0] == "1"


def row_counts(runner: Runner, database: str) -> dict[str, int]:
    """COUNT(*) of every base table of `database` (exact, not the InnoDB estimate)."""
    tables = [r[0] for r in sql(
        runner, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                f"TABLE_SCHEMA = {quote_text(database)} AND TABLE_TYPE = 'BASE TABLE' "
                "ORDER BY TABLE_NAME")]
    if not tables:
        return {}
    query = " UNION ALL ".join(
        f"SELECT {quote_text(t)}, COUNT(*) FROM {quote_name(database)}.{quote_name(t)}"
        for t in tables)
    return {r[0]: int(r[1]) for r in sql(runner, query, timeout=3600)}


# --------------------------------------------------------------------------- pipelines


def _env(runner: Runner) -> dict[str, str]:
    base = getattr(runner, "base_env", None)
    return dict(base) if isinstance(base, dict) else dict(_DEFAULT_ENV)


def _start(argv: Sequence[str], env: Mapping[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(list(argv), env=dict(env), **kwargs)  # argv, never a shell
    except FileNotFoundError:
        raise BackupError(f"{argv[0]}: command not found") from None


def _tail(handle: IO[bytes]) -> str:
    handle.seek(0)
    text = handle.read().decode("utf-8", "replace").strip()
    return " | ".join(line for line in text.splitlines()[-3:] if line.strip())


@contextlib.contextmanager
def _procs() -> Iterator[list[subprocess.Popen[bytes]]]:
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


def _wait(proc: subprocess.Popen[bytes], deadline: float, what: str) -> int:
    try:
        return proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} timed out") from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def dump_database(runner: Runner, database: str, dest: Path, *, threads: int = 0,
                  level: int = 3, timeout: float = DEFAULT_TIMEOUT,
                  extra_options: Sequence[str] = ()) -> DumpRecord:
    """Dump `database` into `dest` (a .sql.zst, mode 0600); the file appears only complete.

    Raises BackupError (with the failing command's last lines) on any failure, NoSpaceError
    when the filesystem filled up; `dest` is then absent and no partial file is left."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    started, clock = _now(), time.monotonic()
    rows = row_counts(runner, database)
    env = _env(runner)
    deadline = clock + timeout
    digest = hashlib.sha256()
    size = 0
    dump_argv = ["mariadb-dump", *DUMP_OPTIONS, *extra_options, "--", database]
    zstd_argv = ["zstd", "-q", "-c", f"-{level}", f"-T{threads}"]
    try:
        with (tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as zstd_err,
              _procs() as procs):
            dumper = _start(dump_argv, env, stdout=subprocess.PIPE, stderr=dump_err,
                            stdin=subprocess.DEVNULL)
            procs.append(dumper)
            assert dumper.stdout is not None
            packer = _start(zstd_argv, env, stdin=dumper.stdout, stdout=subprocess.PIPE,
                            stderr=zstd_err)
            procs.append(packer)
            dumper.stdout.close()  # only zstd reads it now: zstd's death stops the dump
            assert packer.stdout is not None
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), 0o600)
                while chunk := packer.stdout.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    if time.monotonic() > deadline:
                        raise BackupError(f"dump of {database} timed out after {timeout:.0f} s")
                out.flush()
                os.fsync(out.fileno())
            zrc = _wait(packer, deadline, f"zstd of {database}")
            drc = _wait(dumper, deadline, f"mariadb-dump of {database}")
            if drc != 0:
                raise BackupError(f"mariadb-dump of {database} exited {drc}: {_tail(dump_err)}")
            if zrc != 0:
                raise BackupError(f"zstd of {database} exited {zrc}: {_tail(zstd_err)}")
        os.replace(partial, dest)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        if exc.errno == 28:  # ENOSPC
            raise NoSpaceError(f"no space left for {dest} ({database}): the dump was "
                               "removed") from None
        raise BackupError(f"cannot write {dest}: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return DumpRecord(database=database, file=dest.name, size=size, sha256=digest.hexdigest(),
                      started=started, finished=_now(),
                      seconds=round(time.monotonic() - clock, 3), rows=rows)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _decompress(path: Path, sink: Callable[[bytes], None], *,
                env: Mapping[str, str] | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """Stream the decompressed content of `path` into `sink`; a problem, or None."""
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile() as err, _procs() as procs:
        proc = _start(["zstd", "-q", "-d", "-c", "--", str(path)], env or _DEFAULT_ENV,
                      stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        procs.append(proc)
        assert proc.stdout is not None
        while chunk := proc.stdout.read(CHUNK):
            sink(chunk)
            if time.monotonic() > deadline:
                return f"{path.name}: decompression timed out"
        rc = _wait(proc, deadline, f"zstd -d {path.name}")
        if rc != 0:
            return f"{path.name}: does not decompress (zstd exited {rc}: {_tail(err)})"
    return None


def verify_dump(path: Path, record: Recorded) -> str | None:
    """None when `path` has the recorded size and sha256, decompresses, and ends with
    mariadb-dump's completion marker; otherwise the problem, in one line."""
    path = Path(path)
    if not path.is_file():
        return f"{path.name}: missing"
    size = path.stat().st_size
    if size != record.size:
        return f"{path.name}: {size} bytes, the manifest says {record.size}"
    if sha256_of(path) != record.sha256:
        return f"{path.name}: sha256 does not match the manifest"
    tail = bytearray()

    def keep_tail(chunk: bytes) -> None:
        tail.extend(chunk)
        del tail[:-4096]

    problem = _decompress(path, keep_tail)
    if problem:
        return problem
    lines = [line for line in bytes(tail).splitlines() if line.strip()]
    if not lines or not lines[-1].startswith(COMPLETION_MARKER):
        return f"{path.name}: no completion marker at the end (the dump was cut short)"
    return None


def create_database(runner: Runner, database: str) -> None:
    sql(runner, f"CREATE DATABASE IF NOT EXISTS {quote_name(database)} "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")


def drop_database(runner: Runner, database: str) -> None:
    sql(runner, f"DROP DATABASE IF EXISTS {quote_name(database)}")


def restore_database(runner: Runner, source: Path, database: str, *,
                     timeout: float = DEFAULT_TIMEOUT) -> None:
    """Load the dump `source` into `database` (created when missing). Tables of the dump
    replace tables of the same name; other tables of `database` are left as they are."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source}: no such dump")
    create_database(runner, database)
    env = _env(runner)
    deadline = time.monotonic() + timeout
    with (tempfile.TemporaryFile() as zstd_err, tempfile.TemporaryFile() as load_err,
          _procs() as procs):
        unpacker = _start(["zstd", "-q", "-d", "-c", "--", str(source)], env,
                          stdout=subprocess.PIPE, stderr=zstd_err, stdin=subprocess.DEVNULL)
        procs.append(unpacker)
        assert unpacker.stdout is not None
        loader = _start(["mariadb", "--batch", "--max-allowed-packet=1G",
                         f"--database={database}"], env, stdin=unpacker.stdout,
                        stdout=subprocess.DEVNULL, stderr=load_err)
        procs.append(loader)
        unpacker.stdout.close()
        lrc = _wait(loader, deadline, f"restore of {database}")
        zrc = _wait(unpacker, deadline, f"zstd -d {source.name}")
        if zrc != 0:
            raise BackupError(f"{source.name} does not decompress (zstd exited {zrc}: "
                              f"{_tail(zstd_err)})")
        if lrc != 0:
            raise BackupError(f"loading {source.name} into {database} failed (mariadb exited "
                              f"{lrc}: {_tail(load_err)})")


__all__ = ["BackupError", "DumpRecord", "NoSpaceError", "database_exists", "dump_database",
           "restore_database", "row_counts", "verify_dump"]
