"""`barracuda backup`: run, verify, list and restore the database backups."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Optional

import typer

from installer.agents.backup import agent
from installer.agents.backup.store import BackupSet, list_sets
from installer.cli import options as opt
from installer.cli.app import App, application
from installer.config import load, resolve_path
from installer.database.dump import BackupError
from installer.errors import UsageError
from installer.runlog import Redactor, start_run_log
from installer.runner import SubprocessRunner
from installer.target import Target

app = typer.Typer(no_args_is_help=True,
                  help="Database backups: run, verify, list, restore.")

DRILL = typer.Option(False, "--drill",
                     help="Also restore each dump into a scratch database and compare row "
                          "counts.")
NOW = typer.Option(None, "--now", hidden=True,
                   help="Pretend it is this ISO time (tests of the rotation).")
NO_SPACE_CHECK = typer.Option(
    False, "--no-space-check",
    help="Start even when the estimate says the backup will not fit (a backup that runs out "
         "of space is marked incomplete).")


def _settings(app: App) -> agent.Settings:
    return agent.Settings.load(load(resolve_path(app.config, app.root)), app.root)


def _clock(now: Optional[str]) -> agent.Clock:
    if not now:
        return agent.utc_now
    try:
        fixed = datetime.fromisoformat(now)
    except ValueError:
        raise UsageError(f'--now: bad value "{now}": expected an ISO time such as '
                         "2026-01-31T01:15:00") from None
    fixed = fixed if fixed.tzinfo else fixed.replace(tzinfo=UTC)
    return lambda: fixed


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def _row(backup: BackupSet) -> str:
    verification = (backup.manifest or {}).get("verification") or {}
    when = verification.get("time", "")
    status = {"good": f"verified {when}" + (" (drill)" if verification.get("drill") else ""),
              "failed": f"FAILED verification {when}",
              "unverified": "not verified", "incomplete": "INCOMPLETE"}[backup.status]
    count = len(backup.records)
    return (f"{backup.stamp}  {backup.when:%Y-%m-%d %H:%M} UTC  {_size(backup.size):>10}  "
            f"{count:>3} db  {status}")


@app.command("run", cls=opt.takes("dry_run", "json", "quiet", "root", "config"))
def run(
    context: typer.Context, drill: bool = DRILL, no_space_check: bool = NO_SPACE_CHECK,
    now: Optional[str] = NOW,
) -> None:
    """Back up every database now (cron runs this nightly), verify it, rotate old ones."""
    ctx = application(context)
    json, root = ctx.json, ctx.root
    clock = _clock(now)
    settings = _settings(ctx)
    runner = SubprocessRunner()
    if ctx.dry_run:
        plan = agent.plan_backup(runner, settings)
        if json:
            ctx.emit_json(plan.as_dict())
            return
        print(f"would back up {len(plan.databases)} databases into {settings.base}: "
              f"{' '.join(plan.databases)}")
        print(("fits: " if plan.estimate.fits else "DOES NOT FIT: ") + plan.estimate.explain())
        return
    redactor = Redactor()
    with agent.backup_lock(settings, ctx.say):
        logfile = start_run_log(Target(root), "backup", redactor)
        agent.lower_priority(runner)
        try:
            result = agent.run_backup(runner, settings, now=clock, drill=drill,
                                      space_check=not no_space_check, say=ctx.say)
        except BackupError:
            ctx.say(f"Log: {logfile}")
            raise
    if json:
        ctx.emit_json(result.as_dict())
    assert result.backup is not None
    ctx.say(f"backup {result.backup.path.name}: {len(result.databases)} databases, "
            f"{_size(result.backup.size)}, verified" + (" with a drill" if drill else "")
            + (f"; removed {len(result.removed)} old" if result.removed else ""))


@app.command("verify", cls=opt.takes("json", "root", "config"))
def verify(
    context: typer.Context,
    timestamp: Optional[str] = typer.Argument(None, help="The backup (default: the newest)."),
    drill: bool = DRILL,
) -> None:
    """Check a backup again: checksums, decompression, completion markers (and a drill)."""
    ctx = application(context)
    json = ctx.json
    settings = _settings(ctx)
    sets = list_sets(settings.base)
    chosen = [s for s in sets if s.stamp.startswith(timestamp)] if timestamp else sets[-1:]
    if not sets:
        raise UsageError(f"no backups in {settings.base}")
    if len(chosen) != 1:
        raise UsageError(f"{timestamp}: matches {len(chosen)} backups in {settings.base}; "
                         "give a timestamp from `barracuda backup list`")
    runner = SubprocessRunner()
    with agent.backup_lock(settings, ctx.say):
        problems = agent.verify_set(runner, settings, chosen[0], drill=drill, say=ctx.say)
    if json:
        ctx.emit_json({"backup": chosen[0].as_dict(), "problems": problems})
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if problems:
        raise BackupError(f"backup {chosen[0].stamp} failed verification")
    ctx.say(f"backup {chosen[0].stamp}: {len(chosen[0].records)} dumps verified"
            + (" with a drill" if drill else ""))


@app.command("list", cls=opt.takes("json", "root", "config"))
def list_backups(context: typer.Context) -> None:
    """The backups, oldest first: time, size, verified or not."""
    ctx = application(context)
    settings = _settings(ctx)
    sets = list_sets(settings.base)
    if ctx.json:
        ctx.emit_json({"dir": str(settings.base), "backups": [s.as_dict() for s in sets]})
        return
    if not sets:
        print(f"no backups in {settings.base}")
        return
    for backup in sets:
        print(_row(backup))


@app.command("restore", cls=opt.takes("yes", "quiet", "root", "config"))
def restore(
    context: typer.Context,
    database: str = typer.Argument(..., help="The database to restore."),
    from_: Optional[str] = typer.Option(None, "--from",
                                        help="The backup's timestamp (default: newest good)."),
    as_: Optional[str] = typer.Option(None, "--as", help="Restore under this name instead."),
) -> None:
    """Restore a database; an existing one is saved first, then replaced (asks, or --yes)."""
    ctx = application(context)
    root = ctx.root
    settings = _settings(ctx)

    def confirm(question: str) -> bool:
        if ctx.yes:
            return True
        if not ctx.interactive:
            raise UsageError(f"database {as_ or database} exists and this is not a terminal: "
                             "pass --yes to replace it (a copy is saved first)")
        return ctx.confirm(question)

    runner = SubprocessRunner()
    with agent.backup_lock(settings, ctx.say):
        start_run_log(Target(root), "restore", Redactor())
        result = agent.restore(runner, settings, database, stamp=from_, new_name=as_,
                               confirm=confirm, say=ctx.say)
    ctx.say(f"restored {database} from {result.source.stamp} into {result.database}"
            + (f"; the replaced database was saved to {result.saved}" if result.saved else ""))
