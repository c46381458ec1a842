"""The Drupal tool adapter: argv and environment of each verb on each core (secrets never in
argv), and the parsing of real-shaped results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer.drupal import detect, drush
from installer.drupal.drush import D7Tool, DrupalTool, DrupalToolError, DrushTool
from installer.drupal.settings import DatabaseCredentials
from installer.errors import UsageError
from installer.runner import Result
from tests.unit.test_drupal_detect import d7_tree, d11_project

PASSWORD = drush.new_admin_password()


def result(rc: int = 0, stdout: str = "", stderr: str = "") -> Result:
    return Result(("x",), rc, stdout, stderr)


@pytest.fixture
def d7(tmp_path: Path) -> DrupalTool:
    return DrupalTool.for_platform(detect.detect(d7_tree(tmp_path / "d7")), php="/usr/bin/php8.2",
                                   d7tool=Path("/share/d7tool.php"))


@pytest.fixture
def d11(tmp_path: Path) -> DrupalTool:
    root = d11_project(tmp_path / "d11")
    (root / "vendor" / "drush" / "drush").mkdir(parents=True)
    (root / "vendor" / "drush" / "drush" / "drush.php").write_text("<?php\n")
    return DrupalTool.for_platform(detect.detect(root), php="/usr/bin/php8.4")


def test_backends(d7: DrupalTool, d11: DrupalTool, tmp_path: Path) -> None:
    assert isinstance(d7, D7Tool) and isinstance(d11, DrushTool)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "index.php").write_text("<?php\n")
    with pytest.raises(UsageError, match="not Drupal"):
        DrupalTool.for_platform(detect.detect(tmp_path / "app"))
    no_drush = detect.detect(d11_project(tmp_path / "nodrush"))
    (no_drush.root / "vendor" / "bin" / "drush").unlink()
    with pytest.raises(UsageError, match="composer require drush/drush"):
        DrupalTool.for_platform(detect.detect(no_drush.root))


def test_d7_argv(d7: DrupalTool) -> None:
    inv = d7.install(uri="https://one.example.org", admin_password=PASSWORD,
                     site_name="One", site_mail="ops@one.example.org")
    root = str(d7.platform.docroot)
    assert inv.argv == ("/usr/bin/php8.2", "/share/d7tool.php", f"--root={root}",
                        "--uri=https://one.example.org", "install", "--profile=standard",
                        "--locale=en", "--site-name=One", "--site-mail=ops@one.example.org",
                        "--account-name=admin", "--account-mail=ops@one.example.org")
    assert inv.env == {"BARRACUDA_ACCOUNT_PASS": PASSWORD}
    assert PASSWORD not in " ".join(inv.argv) and PASSWORD not in repr(inv)
    assert inv.as_user("o1").argv[:4] == ("runuser", "-u", "o1", "--")
    for verb, word in (("status", "status"), ("cron", "cron"), ("cache_rebuild", "cache-clear"),
                       ("updatedb", "updatedb"), ("user_login", "user-login")):
        assert getattr(d7, verb)(uri="http://one.example.org").argv[-1] == word
    assert d7.maintenance(uri="http://one.example.org", on=True).argv[-2:] == (
        "maintenance", "--value=1")


def test_d11_argv(d11: DrupalTool) -> None:
    db = DatabaseCredentials("o1_one", "o1_one", "p@ss:w/rd#?", host="127.0.0.1")
    inv = d11.install(uri="https://one.example.org", admin_password=PASSWORD, profile="minimal",
                      db=db)
    drush_php = str(d11.platform.root / "vendor" / "drush" / "drush" / "drush.php")
    assert inv.argv[:6] == ("/usr/bin/php8.4", drush_php, f"--root={d11.platform.docroot}",
                            "--uri=https://one.example.org", "--no-interaction", "site:install")
    assert "minimal" in inv.argv and "--sites-subdir=one.example.org" in inv.argv
    assert inv.env[drush.DRUSH_PASS_ENV] == PASSWORD
    assert inv.env[drush.DRUSH_DB_URL_ENV] == \
        "mysql://o1_one:p%40ss%3Aw%2Frd%23%3F@127.0.0.1:3306/o1_one"
    joined = " ".join(inv.argv)
    assert PASSWORD not in joined and db.password not in joined and "p%40ss" not in joined
    assert set(inv.secrets) >= {PASSWORD, db.password}
    assert d11.status(uri="https://one.example.org").argv[-2:] == ("core:status",
                                                                   "--format=json")
    assert d11.user_login(uri="https://one.example.org").argv[-2:] == ("user:login",
                                                                       "--no-browser")
    assert d11.updatedb(uri="https://one.example.org").argv[-2:] == ("updatedb", "--yes")
    assert d11.maintenance(uri="https://one.example.org", on=False).argv[-2:] == (
        "maint:set", "0")


def test_refusals(d7: DrupalTool) -> None:
    with pytest.raises(UsageError, match="12 characters"):
        d7.install(uri="https://one.example.org", admin_password="short")
    with pytest.raises(UsageError, match="'nope' is not offered"):
        d7.install(uri="https://one.example.org", admin_password=PASSWORD, profile="nope")
    with pytest.raises(UsageError, match="http:// or https://"):
        d7.status(uri="one.example.org")


def test_d7_parsing(d7: DrupalTool) -> None:
    line = "BARRACUDA-JSON " + json.dumps({
        "ok": True, "db": True, "bootstrap": True, "version": "7.101", "profile": "standard",
        "site_name": "One", "pending_updates": 2, "schema": {"system": 7087}})
    status = d7.parse_status(result(stdout="noise\n" + line + "\n"))
    assert (status.bootstrap, status.db, status.pending_updates) == (True, True, 2)
    assert status.schema == {"system": 7087}
    down = d7.parse_status(result(1, "BARRACUDA-JSON " + json.dumps(
        {"ok": False, "db": False, "bootstrap": False, "error": "database: refused"})))
    assert not down.bootstrap and down.error == "database: refused"
    url = "https://one.example.org/user/reset/1/1700000000/abc/login"
    assert d7.parse_user_login(result(stdout=f'BARRACUDA-JSON {{"ok": true, "url": "{url}"}}')) \
        == url
    with pytest.raises(DrupalToolError, match=r"^Drupal 7 install failed: the installer failed: "
                                              r"profile x$"):
        d7.parse_install(result(1, 'BARRACUDA-JSON {"ok": false, "error": "the installer '
                                   'failed: profile x"}'))
    with pytest.raises(DrupalToolError, match="PHP Fatal error: boom"):
        d7.parse_cron(result(255, "", "PHP Fatal error: boom\n"))
    assert d7.parse_updatedb(result(stdout='BARRACUDA-JSON {"ok": true, "ran": ["a_update_7001"]}'
                                    )) == ["a_update_7001"]


def test_drush_parsing(d11: DrupalTool) -> None:
    out = json.dumps({"drupal-version": "11.2.8", "db-status": "Connected",
                      "bootstrap": "Successful", "install-profile": "standard",
                      "site-name": "One"})
    status = d11.parse_status(result(stdout="[warning] something\n" + out))
    assert (status.bootstrap, status.db, status.version) == (True, True, "11.2.8")
    assert not d11.parse_status(result(stdout='{"drupal-version": "11.2.8"}')).bootstrap
    link = "https://one.example.org/user/reset/1/1700000000/xyz/login"
    assert d11.parse_user_login(result(stdout=link + "\n")) == link
    with pytest.raises(DrupalToolError, match="printed no link"):
        d11.parse_user_login(result(stdout="nothing"))
    failed = result(1, "", " [notice] Starting Drupal installation.\n"
                          " [error]  Database name 'x' does not exist \n")
    with pytest.raises(DrupalToolError, match=r"^drush install failed: Database name 'x' does "
                                              r"not exist$"):
        d11.parse_install(failed)
    assert d11.parse_updatedb(result(stdout="", stderr=" > [notice] Update started: "
                                                       "system_update_11201\n")) == \
        ["system_update_11201"]


def test_passwords_are_random() -> None:
    values = {drush.new_admin_password() for _ in range(50)}
    assert len(values) == 50 and all(len(v) == 24 and v.isalnum() for v in values)
