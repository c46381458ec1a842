"""One database to one compressed file and back: the library every backup path uses.

    record = dump_database(runner, "site_db", Path("/x/site_db.sql.zst"))
    problem = verify_dump(Path("/x/site_db.sql.zst"), record)   # None when sound
    restore_database(runner, Path("/x/site_db.sql.zst"), "site_db_copy")

A dump is `mariadb-dump --single-transaction --routines --triggers --events` of ONE database
(no CREATE DATABASE or USE inside, so it restores under any name), piped into multi-threaded
`zstd`; Python only reads the compressed stream, hashing it while writing it to a hidden
`.NAME.partial` file that becomes NAME (mode 0600) only when both commands succeeded. The
runner answers the SQL questions (row counts, existence) and runs the two streaming
pipelines (Runner.pipeline: argv lists, never a shell)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from installer.database.sql import DatabaseError, create_database, execute, row_counts
from installer.errors import CommandError
from installer.runner import Runner

SUFFIX = ".sql.zst"
# mariadb-dump's last line when it finished (it is not written when the dump stops early).
COMPLETION_MARKER = b"-- Dump completed"
DUMP_OPTIONS = ("--single-transaction", "--routines", "--triggers", "--events", "--quick",
                "--hex-blob", "--max-allowed-packet=1G", "--default-character-set=utf8mb4")
CHUNK = 1 << 20
DEFAULT_TIMEOUT = 6 * 3600.0


class BackupError(DatabaseError):
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
    try:
        rows = row_counts(runner, database)
    except DatabaseError as exc:
        raise BackupError(f"dump of {database}: {exc}") from None
    digest = hashlib.sha256()
    size = 0
    dump_argv = ["mariadb-dump", *DUMP_OPTIONS, *extra_options, "--", database]
    zstd_argv = ["zstd", "-q", "-c", f"-{level}", f"-T{threads}"]
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)

            def write(chunk: bytes) -> None:
                nonlocal size
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)

            try:
                piped = runner.pipeline([dump_argv, zstd_argv], sink=write, timeout=timeout)
            except CommandError as exc:
                raise BackupError(f"dump of {database}: {exc}") from None
            out.flush()
            os.fsync(out.fileno())
        if not piped.ok:
            raise BackupError(piped.failure(database))
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


def verify_dump(runner: Runner, path: Path, record: Recorded) -> str | None:
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

    try:
        piped = runner.pipeline([["zstd", "-q", "-d", "-c", "--", str(path)]], sink=keep_tail,
                                timeout=DEFAULT_TIMEOUT)
    except CommandError as exc:
        return f"{path.name}: {exc}"
    if not piped.ok:
        return f"{path.name}: does not decompress ({piped.failure()})"
    lines = [line for line in bytes(tail).splitlines() if line.strip()]
    if not lines or not lines[-1].startswith(COMPLETION_MARKER):
        return f"{path.name}: no completion marker at the end (the dump was cut short)"
    return None


def restore_database(runner: Runner, source: Path, database: str, *,
                     timeout: float = DEFAULT_TIMEOUT) -> None:
    """Load the dump `source` into `database` (created when missing). Tables of the dump
    replace tables of the same name; other tables of `database` are left as they are."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source}: no such dump")
    _load(runner, ["zstd", "-q", "-d", "-c", "--", str(source)], database,
          f"loading {source.name} into {database}", timeout)


def copy_database(runner: Runner, source: str, dest: str, *,
                  timeout: float = DEFAULT_TIMEOUT) -> None:
    """Copy every table of `source` into `dest` (created when missing), streamed from the
    dump straight into the client: the source is read in one transaction, never locked."""
    _load(runner, ["mariadb-dump", *DUMP_OPTIONS, "--", source], dest,
          f"copying {source} into {dest}", timeout)


def _load(runner: Runner, producer: list[str], database: str, what: str,
          timeout: float) -> None:
    """`database` (created when missing) fed the SQL that `producer` writes, streamed into
    the client; BackupError saying `what` failed."""
    execute(runner, [create_database(database)])
    stages = [producer,
              ["mariadb", "--batch", "--max-allowed-packet=1G", f"--database={database}"]]
    try:
        piped = runner.pipeline(stages, timeout=timeout)
    except CommandError as exc:
        raise BackupError(f"{what}: {exc}") from None
    if not piped.ok:
        raise BackupError(f"{what} failed ({piped.failure()})")


__all__ = ["BackupError", "DumpRecord", "NoSpaceError", "copy_database", "dump_database",
           "restore_database", "verify_dump"]
