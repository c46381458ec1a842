"""The backup agent: rotation (pure), space check, incomplete sets, verification, restore;
with fake mariadb commands (tests/unit/test_backup_dump.py) and the real zstd."""

from __future__ import annotations

import json
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from installer.agents.backup import agent
from installer.agents.backup.rotation import Retention, keep
from installer.agents.backup.store import INCOMPLETE, list_sets
from installer.config import load
from installer.database import dump
from installer.incidents import read_incidents
from installer.runner import SubprocessRunner
from installer.stack import backup as backup_stack
from tests.unit.test_backup_dump import runner  # noqa: F401 - the fixture

T0 = datetime(2026, 1, 1, 1, 15, tzinfo=UTC)


# --------------------------------------------------------------------------- rotation


def daily(days: int, start: datetime = T0) -> list[datetime]:
    return [start + timedelta(days=i) for i in range(days)]


def test_rotation_keeps_days_weeks_and_months() -> None:
    stamps = daily(75)  # 2026-01-01 .. 2026-03-16
    kept = keep(stamps, Retention(daily=3, weekly=2, monthly=2))
    days = {t.strftime("%Y-%m-%d") for t in kept}
    # 3 newest days; the newest of this ISO week (2026-03-16, a Monday, already kept) and of
    # the week before (Sunday 2026-03-15, already kept); the newest of March (kept) and of
    # February (its last day).
    assert days == {"2026-03-16", "2026-03-15", "2026-03-14", "2026-02-28"}
    assert kept[datetime(2026, 2, 28, 1, 15, tzinfo=UTC)] == ["monthly 2026-02"]
    assert "weekly 2026-W11" in kept[datetime(2026, 3, 15, 1, 15, tzinfo=UTC)]


def test_rotation_counts_buckets_that_have_backups_and_the_newest_of_each() -> None:
    # Two a day, with a 20-day gap: the gap does not eat the daily count.
    stamps = [*daily(3), *daily(3, T0 + timedelta(days=23))]
    stamps += [t + timedelta(hours=12) for t in stamps]
    kept = keep(stamps, Retention(daily=4, weekly=0, monthly=0))
    assert sorted(kept) == sorted([
        T0 + timedelta(days=d, hours=12) for d in (2, 23, 24, 25)])


def test_rotation_always_keeps_the_newest_and_nothing_of_nothing() -> None:
    assert keep([], Retention(1, 0, 0)) == {}
    assert list(keep(daily(10), Retention(1, 0, 0))) == [T0 + timedelta(days=9)]


# --------------------------------------------------------------------------- the agent


def settings(tmp_path: Path, **retention: int) -> agent.Settings:
    config = load(tmp_path / "none.cnf")
    base = agent.Settings.load(config, tmp_path / "root")
    values = {"daily": 7, "weekly": 4, "monthly": 3, **retention}
    return agent.Settings(**{**base.__dict__, "retention": Retention(**values), "reserve": 0})


def clock(when: datetime) -> agent.Clock:
    return lambda: when


def test_run_writes_a_verified_set_with_manifest_and_modes(runner: SubprocessRunner,  # noqa: F811
                                                           tmp_path: Path) -> None:
    runner.base_env["FAKE_DBS"] = "information_schema mysql performance_schema site sys " \
                                  "barracuda_drill_12"
    s = settings(tmp_path)
    result = agent.run_backup(runner, s, now=clock(T0))
    assert result.databases == ["mysql", "site"]
    backup = result.backup
    assert backup is not None
    assert backup.path == s.base / f"{s.host}-20260101-011500"
    assert stat.S_IMODE(backup.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(s.base.stat().st_mode) == 0o700
    files = sorted(p.name for p in backup.path.iterdir())
    assert files == ["manifest.json", "mysql.sql.zst", "site.sql.zst"]
    for path in backup.path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    manifest = json.loads((backup.path / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["server_version"].startswith("10.11")
    assert manifest["started"] == manifest["finished"] == "2026-01-01T01:15:00+00:00"
    assert [d["database"] for d in manifest["databases"]] == ["mysql", "site"]
    assert manifest["databases"][1]["sha256"] == dump.sha256_of(backup.path / "site.sql.zst")
    assert manifest["verification"]["ok"] is True
    assert list_sets(s.base)[0].status == "good"


def test_not_enough_space_starts_nothing_and_logs_an_incident(
        runner: SubprocessRunner, tmp_path: Path) -> None:  # noqa: F811
    s = settings(tmp_path)
    agent.run_backup(runner, s, now=clock(T0))
    before = sorted(p.name for p in s.base.rglob("*"))
    runner.base_env["FAKE_DATA_BYTES"] = str(1 << 60)
    with pytest.raises(dump.NoSpaceError, match="not enough space"):
        agent.run_backup(runner, s, now=clock(T0 + timedelta(days=1)))
    assert sorted(p.name for p in s.base.rglob("*")) == before
    incidents = read_incidents(s.root)
    assert incidents[-1]["check"] == "backup-space"
    assert incidents[-1]["action"] == "backup not started; old backups untouched"
    assert set(incidents[-1]) >= {"time", "check", "evidence", "action", "result"}


def test_estimate_grows_from_the_last_good_set(runner: SubprocessRunner,  # noqa: F811
                                               tmp_path: Path) -> None:
    s = settings(tmp_path)
    agent.run_backup(runner, s, now=clock(T0))
    guess = agent.plan_backup(runner, s).estimate
    assert guess.last == list_sets(s.base)[0].size
    assert guess.expected == max(int(1000 * s.ratio), int(guess.last * s.growth))


def test_failed_dump_leaves_an_incomplete_set_and_removes_nothing(
        runner: SubprocessRunner, tmp_path: Path) -> None:  # noqa: F811
    s = settings(tmp_path, daily=1, weekly=0, monthly=0)
    agent.run_backup(runner, s, now=clock(T0))
    runner.base_env["FAKE_DUMP"] = "fail"
    with pytest.raises(dump.BackupError, match="is incomplete: mariadb-dump of site exited 2"):
        agent.run_backup(runner, s, now=clock(T0 + timedelta(days=1)))
    sets = list_sets(s.base)
    assert [b.status for b in sets] == ["good", "incomplete"]
    assert (sets[1].path / INCOMPLETE).exists()
    assert "Lost connection" in (sets[1].manifest or {})["error"]
    assert read_incidents(s.root)[-1]["check"] == "backup-dump"
    # The next good run removes the incomplete set and the old good one (daily=1).
    runner.base_env["FAKE_DUMP"] = "ok"
    result = agent.run_backup(runner, s, now=clock(T0 + timedelta(days=2)))
    assert [b.path.name for b in list_sets(s.base)] == [result.backup.path.name]  # type: ignore[union-attr]
    assert len(result.removed) == 2


def test_killed_run_reads_as_incomplete(runner: SubprocessRunner,  # noqa: F811
                                        tmp_path: Path) -> None:
    s = settings(tmp_path)
    result = agent.run_backup(runner, s, now=clock(T0))
    assert result.backup is not None
    (result.backup.path / INCOMPLETE).write_text("started by a run that was killed\n")
    assert list_sets(s.base)[0].status == "incomplete"
    assert not list_sets(s.base)[0].good


def test_verification_failure_keeps_every_old_set(runner: SubprocessRunner,  # noqa: F811
                                                  tmp_path: Path) -> None:
    s = settings(tmp_path, daily=1, weekly=0, monthly=0)
    agent.run_backup(runner, s, now=clock(T0))
    runner.base_env["FAKE_DUMP"] = "nomarker"
    with pytest.raises(dump.BackupError, match=r"failed verification: .*no completion marker"):
        agent.run_backup(runner, s, now=clock(T0 + timedelta(days=1)))
    assert [b.status for b in list_sets(s.base)] == ["good", "failed"]
    assert read_incidents(s.root)[-1]["check"] == "backup-verify"


def test_drill_restores_and_compares_row_counts(runner: SubprocessRunner,  # noqa: F811
                                                tmp_path: Path) -> None:
    s = settings(tmp_path)
    result = agent.run_backup(runner, s, now=clock(T0), drill=True)
    assert result.backup is not None
    state = Path(runner.base_env["FAKE_STATE"])
    assert any(p.name.startswith("restored-barracuda_drill_") for p in state.iterdir())
    assert "DROP DATABASE IF EXISTS `barracuda_drill_" in (state / "queries").read_text()
    runner.base_env["FAKE_COUNT"] = "99"
    problems = agent.verify_set(runner, s, list_sets(s.base)[0], drill=True)
    assert problems == ["site.sql.zst: row counts differ after the drill restore: t 100->99"]
    assert list_sets(s.base)[0].status == "failed"


def test_rotation_after_runs_keeps_exactly_the_retention(runner: SubprocessRunner,  # noqa: F811
                                                         tmp_path: Path) -> None:
    s = settings(tmp_path, daily=2, weekly=2, monthly=1)
    # Thu 01-01 (W01), Wed 01-07 (W02), Tue 01-13 and Sat 01-17 (W03), Mon 01-19 and
    # Wed 01-21 (W04).
    stamps = [T0 + timedelta(days=d) for d in (0, 6, 12, 16, 18, 20)]
    for when in stamps:
        agent.run_backup(runner, s, now=clock(when))
    left = [b.when for b in list_sets(s.base)]
    assert left == sorted(keep(stamps, s.retention))
    # daily: the 21st and 19th; weekly: W04 (19-25, newest the 21st) and W03 (newest the 17th)
    assert [t.day for t in left] == [17, 19, 21]


def test_restore_saves_the_current_database_first(runner: SubprocessRunner,  # noqa: F811
                                                  tmp_path: Path) -> None:
    s = settings(tmp_path)
    agent.run_backup(runner, s, now=clock(T0))
    runner.base_env["FAKE_EXISTS"] = "1"
    with pytest.raises(dump.BackupError, match="exists; not replaced"):
        agent.restore(runner, s, "site", confirm=lambda _: False)
    state = Path(runner.base_env["FAKE_STATE"])
    assert not (state / "restored-site").exists()
    result = agent.restore(runner, s, "site", confirm=lambda _: True,
                           now=clock(T0 + timedelta(hours=1)))
    assert result.saved == s.base / "pre-restore" / "site-20260101-021500.sql.zst"
    assert result.saved.is_file()
    assert stat.S_IMODE(result.saved.parent.stat().st_mode) == 0o700
    assert (state / "restored-site").read_text().startswith("-- MariaDB dump of site")
    # The pre-restore directory is not a backup set.
    assert len(list_sets(s.base)) == 1
    with pytest.raises(dump.BackupError, match="no good backup holds database other"):
        agent.restore(runner, s, "other", confirm=lambda _: True)
    with pytest.raises(dump.BackupError, match="--from 1999: no complete backup"):
        agent.restore(runner, s, "site", stamp="1999", confirm=lambda _: True)


def test_restore_never_replaces_the_servers_own_database(runner: SubprocessRunner,  # noqa: F811
                                                         tmp_path: Path) -> None:
    runner.base_env["FAKE_DBS"] = "mysql site"
    s = settings(tmp_path)
    agent.run_backup(runner, s, now=clock(T0))
    with pytest.raises(dump.BackupError, match="database mysql is the server's own"):
        agent.restore(runner, s, "mysql", confirm=lambda _: True)
    runner.base_env["FAKE_EXISTS"] = ""
    result = agent.restore(runner, s, "mysql", new_name="mysql_copy", confirm=lambda _: False)
    assert result.database == "mysql_copy" and result.saved is None


def test_restore_puts_the_saved_copy_back_when_loading_fails(
        runner: SubprocessRunner, tmp_path: Path) -> None:  # noqa: F811
    s = settings(tmp_path)
    backup = agent.run_backup(runner, s, now=clock(T0)).backup
    assert backup is not None
    # A dump that the (fake) server refuses to load, with a manifest that matches it.
    plain = tmp_path / "site.sql"
    plain.write_text("BREAK\n-- Dump completed on 2026-01-01\n")
    path = backup.path / "site.sql.zst"
    path.unlink()
    SubprocessRunner().run(["zstd", "-q", "-o", str(path), str(plain)])
    manifest = dict(backup.manifest or {})
    for record in manifest["databases"]:
        if record["database"] == "site":
            record.update(size=path.stat().st_size, sha256=dump.sha256_of(path))
    backup.save_manifest(manifest)
    runner.base_env["FAKE_EXISTS"] = "1"
    with pytest.raises(dump.BackupError, match=r"the saved copy .* was put back"):
        agent.restore(runner, s, "site", confirm=lambda _: True)
    state = Path(runner.base_env["FAKE_STATE"])
    assert (state / "restored-site").read_text().startswith("-- MariaDB dump of site")


def test_cron_line_follows_the_config(tmp_path: Path) -> None:
    cnf = tmp_path / "b.cnf"
    cnf.write_text('_DB_BACKUP_TIME="23:05"\n')
    component = backup_stack.component(load(cnf))
    cron = [r for r in component.resources if getattr(r, "path", "") ==
            "/etc/cron.d/barracuda-backup"]
    assert cron
    assert "\n5 23 * * * root /usr/local/sbin/barracuda backup run --quiet\n" in \
        str(getattr(cron[0], "content", ""))


@pytest.mark.parametrize("value", ["24:00", "1:15", "01:60", "noon"])
def test_bad_backup_time_is_a_config_error(tmp_path: Path, value: str) -> None:
    from installer.errors import ConfigError
    cnf = tmp_path / "b.cnf"
    cnf.write_text(f'_MY_EMAIL=""\n_DB_BACKUP_TIME="{value}"\n')
    with pytest.raises(ConfigError, match=rf'b.cnf:2: _DB_BACKUP_TIME: bad value "{value}": '
                                          "expected a time of day as HH:MM"):
        load(cnf)


def test_fixtures_need_zstd() -> None:
    assert shutil.which("zstd")
