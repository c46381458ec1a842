"""Users, groups and cron files: planned from the facts of a tree, executed through the
distribution's tools on a live target."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.errors import DataError
from installer.resources.accounts import NO_LOGIN, Group, User
from installer.resources.cron import CronJob, cron_file
from tests.fakes import FakeRunner, FakeServices, make_ctx
from tests.unit.test_engine import ctx_for


def write_accounts(root: Path) -> None:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "o1:x:990:100::/data/disk/o1:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\nusers:x:100:\nwww-data:x:33:o1\nredis:x:101:\n")


def test_missing_user_and_group_are_planned_only_under_root(tmp_path: Path) -> None:
    write_accounts(tmp_path)
    ctx = ctx_for(tmp_path)
    user = User("o2", home="/data/disk/o2", primary="users")
    [change] = user.check(ctx)
    assert (change.action, change.executed) == ("create", False)
    assert [c.action for c in Group("o2.web").check(ctx)] == ["create"]
    assert Group("users").check(ctx) == []


def test_existing_user_reports_each_difference(tmp_path: Path) -> None:
    write_accounts(tmp_path)
    ctx = ctx_for(tmp_path)
    wanted = User("o1", home="/data/disk/o1", primary="users", groups=("www-data", "redis"))
    assert [c.action for c in wanted.check(ctx)] == ["shell", "groups"]
    assert "not in redis" in wanted.check(ctx)[1].reason
    same = User("o1", home="/data/disk/o1", primary="users", groups=("www-data",),
                login_shell="/bin/bash")
    assert same.check(ctx) == []


def test_user_created_with_useradd_on_a_live_target(tmp_path: Path) -> None:
    runner = FakeRunner()
    ctx = make_ctx(tmp_path, runner, FakeServices())
    user = User("barracuda-test-nobody", home="/home/x", primary="users", groups=("www-data",))
    user.apply(ctx, user.check(ctx))
    assert runner.calls[-1] == [
        "useradd", "--home-dir", "/home/x", "--no-create-home", "--gid", "users",
        "--shell", NO_LOGIN, "--system", "--groups", "www-data", "barracuda-test-nobody"]


def test_cron_file_names_each_job_and_escapes_percent() -> None:
    resource = cron_file("barracuda-demo", [
        CronJob("stamp", "*/5 * * * *", "date +%s > /tmp/x"),
        CronJob("boot", "@reboot", "true", user="o1"),
    ])
    assert resource.path == "/etc/cron.d/barracuda-demo"
    text = resource.wanted.decode()
    assert "# barracuda: stamp\n*/5 * * * * root date +\\%s > /tmp/x\n" in text
    assert "# barracuda: boot\n@reboot o1 true\n" in text
    assert text.startswith("# Managed by barracuda")


@pytest.mark.parametrize("schedule", ["* * * *", "61 * * * * *", "@", "now"])
def test_bad_cron_schedule_is_a_data_error(schedule: str) -> None:
    with pytest.raises(DataError, match="bad schedule"):
        cron_file("barracuda-demo", [CronJob("x", schedule, "true")])


def test_cron_file_name_with_a_dot_is_refused() -> None:
    with pytest.raises(DataError, match="cron ignores"):
        cron_file("barracuda.demo", [])
