"""The nightly database backup: every database but the system schemas, one verified
.sql.zst each plus a manifest, then rotation; and the restore that saves what it replaces.

Order of a run, each step a promise:
1. one backup at a time (its own lock), none while an install holds the main lock;
2. the estimated size must fit the free space (minus a reserve), or nothing starts, an
   incident is logged and old backups stay as they are;
3. the set is marked INCOMPLETE until every dump and the manifest are written;
4. every dump is verified (checksum, decompression, completion marker; with `drill`, also
   restored into a scratch database whose row counts must match);
5. only then are old sets rotated away, and the newest good set is never one of them."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from installer.agents.backup.rotation import Retention, keep
from installer.agents.backup.store import (
    FORMAT,
    BackupSet,
    complete,
    list_sets,
    new_set,
    remove,
    stamp_of,
)
from installer.config import Config
from installer.data import load_profile
from installer.database import dump, sql
from installer.database.dump import BackupError, DumpRecord, NoSpaceError
from installer.database.sql import DatabaseError
from installer.errors import LockError
from installer.incidents import record_incident
from installer.lock import LOCK_FILE, is_held, locked
from installer.runner import Runner

MIB = 1 << 20
Say = Callable[[str], None]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Settings:
    root: Path  # the machine's / (tests use another tree)
    base: Path  # where the sets live, as a real path
    host: str
    exclude: tuple[str, ...]
    protected: tuple[str, ...]
    drill_prefix: str
    drill_volatile: tuple[str, ...]
    saved_dir: str
    retention: Retention
    level: int
    threads: int
    ratio: float
    growth: float
    reserve: int
    lock: Path
    install_wait: float

    @classmethod
    def load(cls, config: Config, root: Path = Path("/"), base: str | None = None) -> Settings:
        profile = load_profile("backup")
        directory = base or str(profile["dir"])
        return cls(
            root=root,
            base=root / directory.lstrip("/"),
            host=socket.gethostname().split(".")[0] or "localhost",
            exclude=tuple(str(x) for x in profile["exclude"]),
            protected=tuple(str(x) for x in profile["protected"]),
            drill_prefix=str(profile["drill_prefix"]),
            drill_volatile=tuple(str(x) for x in profile["drill_volatile"]),
            saved_dir=str(profile["saved_dir"]),
            retention=Retention(daily=int(config["_DB_BACKUPS_TTL"]),
                                weekly=int(config["_DB_BACKUPS_WEEKLY"]),
                                monthly=int(config["_DB_BACKUPS_MONTHLY"])),
            level=int(profile["zstd_level"]),
            threads=int(profile["zstd_threads"]),
            ratio=float(profile["estimate"]["ratio"]),
            growth=float(profile["estimate"]["growth"]),
            reserve=int(profile["estimate"]["reserve_mib"]) * MIB,
            lock=root / str(profile["lock"]).lstrip("/"),
            install_wait=float(profile["install_lock_wait"]),
        )

    def incident(self, check: str, evidence: str, action: str, result: str) -> None:
        record_incident(check, evidence, action, result, root=self.root)


# --------------------------------------------------------------------------- facts


def databases(runner: Runner, settings: Settings) -> list[str]:
    """The databases a backup holds: all but the system schemas and drill leftovers."""
    names = [r[0] for r in sql.query(runner, "SHOW DATABASES")]
    return sorted(n for n in names
                  if n not in settings.exclude and not n.startswith(settings.drill_prefix))


def data_bytes(runner: Runner, names: list[str]) -> int:
    if not names:
        return 0
    listed = ", ".join(sql.quote_text(n) for n in names)
    rows = sql.query(runner, "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM "
                            f"information_schema.TABLES WHERE TABLE_SCHEMA IN ({listed})")
    return int(float(rows[0][0])) if rows else 0


def server_version(runner: Runner) -> str:
    rows = sql.query(runner, "SELECT VERSION()")
    return rows[0][0] if rows else "unknown"


@dataclass(frozen=True)
class Estimate:
    data: int  # bytes of table data and indexes
    last: int  # bytes of the newest good set (0 when none)
    expected: int  # what the new set should take
    reserve: int
    free: int

    @property
    def needed(self) -> int:
        return self.expected + self.reserve

    @property
    def fits(self) -> bool:
        return self.free >= self.needed

    def as_dict(self) -> dict[str, int | bool]:
        return {"data": self.data, "last": self.last, "expected": self.expected,
                "reserve": self.reserve, "free": self.free, "needed": self.needed,
                "fits": self.fits}

    def explain(self) -> str:
        return (f"needs about {self.expected / MIB:.1f} MiB plus a reserve of "
                f"{self.reserve / MIB:.0f} MiB, {self.free / MIB:.1f} MiB free")


def free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def estimate(runner: Runner, settings: Settings, names: list[str]) -> Estimate:
    data = data_bytes(runner, names)
    good = [s for s in list_sets(settings.base) if s.good]
    last = good[-1].size if good else 0
    expected = max(int(data * settings.ratio), int(last * settings.growth))
    return Estimate(data=data, last=last, expected=expected, reserve=settings.reserve,
                    free=free_bytes(settings.base))


# --------------------------------------------------------------------------- locking


def lower_priority(runner: Runner) -> None:
    """Lowest CPU priority and the idle IO class, inherited by the dump processes."""
    with contextlib.suppress(OSError):
        os.nice(19 - os.nice(0))
    runner.run(["ionice", "-c", "3", "-p", str(os.getpid())], check=False, timeout=10)


@contextlib.contextmanager
def backup_lock(settings: Settings, say: Say, wait: float = 10.0) -> Iterator[None]:
    """One backup or restore at a time, and none while an install holds the main lock."""
    install_lock = settings.root / LOCK_FILE.lstrip("/")
    with locked(settings.lock, wait=wait):
        deadline = time.monotonic() + settings.install_wait
        if is_held(install_lock):
            say(f"waiting for the run holding {install_lock} to finish")
        while is_held(install_lock):
            if time.monotonic() >= deadline:
                raise LockError(f"a barracuda run still holds {install_lock} after "
                                f"{settings.install_wait:.0f} s; backup not started")
            time.sleep(1)
        yield


# --------------------------------------------------------------------------- verify


def drill_database(runner: Runner, settings: Settings, path: Path,
                   record: DumpRecord) -> str | None:
    """Restore `path` into a scratch database and compare its row counts with the record."""
    scratch = f"{settings.drill_prefix}{os.getpid()}"
    try:
        sql.execute(runner, [sql.drop_database(scratch)])
        dump.restore_database(runner, path, scratch)
        restored = sql.row_counts(runner, scratch)
    except DatabaseError as exc:
        return f"{record.file}: drill restore failed: {exc}"
    finally:
        with contextlib.suppress(DatabaseError):
            sql.execute(runner, [sql.drop_database(scratch)])
    skip = {v.split(".", 1)[1] for v in settings.drill_volatile
            if v.split(".", 1)[0] == record.database}
    differ = sorted(t for t in set(restored) | set(record.rows)
                    if t not in skip and restored.get(t) != record.rows.get(t))
    if differ:
        shown = ", ".join(f"{t} {record.rows.get(t)}->{restored.get(t)}" for t in differ[:5])
        return f"{record.file}: row counts differ after the drill restore: {shown}"
    return None


def verify_set(runner: Runner, settings: Settings, backup: BackupSet, *, drill: bool = False,
               now: Clock = utc_now, say: Say = lambda _: None) -> list[str]:
    """Verify every dump of `backup` (and drill it), record the outcome in its manifest,
    log an incident when it fails; the problems, empty when the set is good."""
    if backup.incomplete:
        return [f"{backup.path.name} is incomplete"]
    problems = []
    for record in backup.records:
        path = backup.path / record.file
        problem = dump.verify_dump(runner, path, record)
        if problem is None and drill:
            say(f"drill: restoring {record.file} into a scratch database")
            problem = drill_database(runner, settings, path, record)
        if problem:
            problems.append(problem)
    manifest = dict(backup.manifest or {})
    manifest["verification"] = {"time": _iso(now()), "ok": not problems,
                                "problems": problems, "drill": drill}
    backup.save_manifest(manifest)
    if problems:
        settings.incident("backup-verify", f"{backup.path}: {'; '.join(problems)}",
                          "set marked failed; no old backup removed", "failed")
    return problems


# --------------------------------------------------------------------------- rotate


def rotate(settings: Settings, say: Say = lambda _: None) -> list[BackupSet]:
    """Remove what the retention does not keep; only when the newest set is good. Sets that
    are not good and older than the newest good one go too; the newest good one stays."""
    sets = list_sets(settings.base)
    good = [s for s in sets if s.good]
    if not good or sets[-1] is not good[-1]:
        return []
    kept = keep([s.when for s in good], settings.retention)
    newest = good[-1]
    removed = []
    for backup in sets:
        if backup is newest or (backup.when in kept and backup.good):
            continue
        if not backup.good and backup.when >= newest.when:
            continue
        say(f"removing {backup.path.name} ({backup.status})")
        remove(backup)
        removed.append(backup)
    return removed


# --------------------------------------------------------------------------- run


@dataclass
class RunResult:
    backup: BackupSet | None
    estimate: Estimate
    databases: list[str]
    problems: list[str]
    removed: list[BackupSet]

    def as_dict(self) -> dict[str, Any]:
        return {
            "backup": self.backup.as_dict() if self.backup else None,
            "estimate": self.estimate.as_dict(), "databases": self.databases,
            "problems": self.problems, "removed": [b.path.name for b in self.removed],
        }


def plan_backup(runner: Runner, settings: Settings) -> RunResult:
    """What a run would dump and whether it fits (for --dry-run); touches nothing."""
    names = databases(runner, settings)
    return RunResult(None, estimate(runner, settings, names), names, [], [])


def run_backup(runner: Runner, settings: Settings, *, now: Clock = utc_now, drill: bool = False,
               space_check: bool = True, say: Say = lambda _: None) -> RunResult:
    """One nightly backup (the caller holds backup_lock). Raises NoSpaceError before
    anything is written when it would not fit, BackupError when a dump or the
    verification failed (old sets are then left untouched)."""
    names = databases(runner, settings)
    guess = estimate(runner, settings, names)
    if space_check and not guess.fits:
        message = (f"not enough space in {settings.base} for a backup: {guess.explain()}")
        settings.incident("backup-space", message,
                          "backup not started; old backups untouched", "failed")
        raise NoSpaceError(message)
    started = now()
    backup = new_set(settings.base, settings.host, started, _iso(started))
    say(f"backup {backup.path} ({len(names)} databases, {guess.explain()})")
    manifest: dict[str, Any] = {
        "format": FORMAT, "host": settings.host, "timestamp": stamp_of(started),
        "started": _iso(started), "server_version": server_version(runner),
        "status": "incomplete", "databases": [],
    }
    backup.save_manifest(manifest)
    try:
        for name in names:
            record = dump.dump_database(runner, name, backup.path / f"{name}{dump.SUFFIX}",
                                        threads=settings.threads, level=settings.level)
            manifest["databases"].append(record.as_dict())
            backup.save_manifest(manifest)
            say(f"  {name}: {record.size / MIB:.2f} MiB in {record.seconds:.1f} s")
    except DatabaseError as exc:
        manifest["error"] = str(exc)
        with contextlib.suppress(OSError):
            backup.save_manifest(manifest)
        settings.incident("backup-dump", f"{backup.path}: {exc}",
                          "set left marked incomplete; old backups untouched", "failed")
        raise BackupError(f"backup {backup.path.name} is incomplete: {exc}") from None
    manifest["finished"] = _iso(now())
    complete(backup, manifest)
    problems = verify_set(runner, settings, backup, drill=drill, now=now, say=say)
    if problems:
        raise BackupError(f"backup {backup.path.name} failed verification: {problems[0]}"
                          + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    removed = rotate(settings, say)
    return RunResult(backup, guess, names, [], removed)


# --------------------------------------------------------------------------- restore


@dataclass
class RestoreResult:
    database: str
    source: BackupSet
    saved: Path | None


def find_source(settings: Settings, database: str, stamp: str | None) -> BackupSet:
    """The set to restore `database` from: --from STAMP (a unique prefix will do), else the
    newest good set that holds it."""
    sets = [s for s in list_sets(settings.base) if not s.incomplete]
    if stamp:
        chosen = [s for s in sets if s.stamp.startswith(stamp)]
        if len(chosen) != 1:
            raise BackupError(
                f"--from {stamp}: " + ("no complete backup has that timestamp" if not chosen
                                       else f"matches {len(chosen)} backups, be more precise"))
        if chosen[0].record_for(database) is None:
            raise BackupError(f"backup {chosen[0].stamp} holds no database {database}")
        return chosen[0]
    for backup in reversed(sets):
        if backup.good and backup.record_for(database):
            return backup
    raise BackupError(f"no good backup holds database {database}")


def save_current(runner: Runner, settings: Settings, database: str, now: Clock) -> Path:
    """Dump the live `database` into <base>/<saved_dir>/ before it is replaced."""
    directory = settings.base / settings.saved_dir
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    path = directory / f"{database}-{stamp_of(now())}{dump.SUFFIX}"
    record = dump.dump_database(runner, database, path, threads=settings.threads,
                                level=settings.level)
    problem = dump.verify_dump(runner, path, record)
    if problem:
        raise BackupError(f"the copy of {database} made before the restore does not verify "
                          f"({problem}); nothing was restored")
    return path


def restore(runner: Runner, settings: Settings, database: str, *, stamp: str | None = None,
            new_name: str | None = None, confirm: Callable[[str], bool],
            now: Clock = utc_now, say: Say = lambda _: None) -> RestoreResult:
    """Restore `database` from a backup (as `new_name` when given). An existing target is
    replaced only when `confirm` agrees, and only after a verified copy of it was saved;
    when loading fails, that copy is put back."""
    source = find_source(settings, database, stamp)
    record = source.record_for(database)
    assert record is not None
    path = source.path / record.file
    problem = dump.verify_dump(runner, path, record)
    if problem:
        raise BackupError(f"backup {source.stamp}: {problem}; nothing was restored")
    target = new_name or database
    if len(target) > 64 or not target.strip():
        raise BackupError(f"bad database name {target!r}")
    if target in settings.protected or target in settings.exclude:
        raise BackupError(f"database {target} is the server's own: it is never restored over "
                          "(restore it under another name with --as NAME)")
    saved = None
    if sql.database_exists(runner, target):
        if not confirm(f"Database {target} exists: replace it with the backup of "
                       f"{source.stamp} (a copy of it is saved first)?"):
            raise BackupError(f"database {target} exists; not replaced (pass --yes to "
                              "replace it after saving a copy)")
        saved = save_current(runner, settings, target, now)
        say(f"saved the current {target} to {saved}")
    say(f"restoring {database} from {source.stamp} into {target}")
    try:
        sql.execute(runner, [sql.drop_database(target)])
        dump.restore_database(runner, path, target)
    except DatabaseError as exc:
        if saved is None:
            with contextlib.suppress(DatabaseError):
                sql.execute(runner, [sql.drop_database(target)])
            raise BackupError(f"restore of {target} failed and was removed: {exc}") from None
        try:
            sql.execute(runner, [sql.drop_database(target)])
            dump.restore_database(runner, saved, target)
        except DatabaseError as again:
            raise BackupError(f"restore of {target} failed ({exc}) and putting back the "
                              f"saved copy failed too ({again}): load {saved} by hand"
                              ) from None
        raise BackupError(f"restore of {target} failed ({exc}); the saved copy {saved} was "
                          "put back") from None
    return RestoreResult(target, source, saved)
