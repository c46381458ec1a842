"""installer.drupal on a real Drupal 7.101 codebase in a fresh Debian 12 box with the project
installed: settings.php and the credentials file rendered by the installed tool's Python,
then Drupal's own installer, status, cron and one-time login link through d7tool.php, with
real SQL and a real PHP web server checking what came back.

The fixture is unpacked once on the host (tests/box/fixtures.py) and copied in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.box.boxes import Box
from tests.box.conftest import installed_box
from tests.box.fixtures import fixture_tree

# ../shared/fixtures beside the checkout (or beside the main checkout of a worktree).

DOMAIN = "d7.example.org"
ROOT = "/srv/platforms/d7"
CREDENTIALS = f"/srv/secrets/{DOMAIN}.php"
DB = "d7box"
# Quotes, a backslash and URL characters: the password must survive PHP, SQL and settings.
DB_PASSWORD = "Pw'd\\x#@:/q"
PYTHON = "/opt/barracuda/bin/python"

RENDER = r"""
import json, sys
from pathlib import Path
from installer.drupal import detect, settings
root, domain, creds, db, password = sys.argv[1:6]
platform = detect.detect(Path(root))
site = settings.SiteSettings(platform=platform, domain=domain, names=("www." + domain,),
                             dev_names=("dev." + domain,), credentials_file=Path(creds),
                             hash_salt=settings.new_hash_salt())
Path(creds).write_text(settings.credentials_php(
    settings.DatabaseCredentials(db, db, password, host="localhost"), domain=domain))
site_dir = platform.site_dir(domain)
(site_dir / "settings.php").write_text(settings.settings_php(site))
print(json.dumps(platform.as_record()))
"""

RUN = r"""
import json, sys
from pathlib import Path
from installer.drupal import detect, drush
from installer.errors import BarracudaError
from installer.runner import SubprocessRunner
root, uri, verb = sys.argv[1:4]
tool = drush.DrupalTool.for_platform(detect.detect(Path(root)), php="/usr/bin/php")
runner = SubprocessRunner()
out = {}
try:
    if verb == "install":
        password = drush.new_admin_password()
        inv = tool.install(uri=uri, admin_password=password, profile=sys.argv[4],
                           site_name="Box site", site_mail="ops@d7.example.org")
        assert password not in " ".join(inv.argv), "the password is in argv"
        result = runner.run(inv.argv, env=inv.env, timeout=inv.timeout, check=False)
        out["password_printed"] = password in result.stdout + result.stderr
        tool.parse_install(result)
    elif verb == "status":
        inv = tool.status(uri=uri)
        status = tool.parse_status(runner.run(inv.argv, env=inv.env, check=False))
        out.update(bootstrap=status.bootstrap, db=status.db, version=status.version,
                   profile=status.profile, site_name=status.site_name,
                   pending=status.pending_updates, system=status.schema.get("system"))
    elif verb == "cron":
        inv = tool.cron(uri=uri)
        tool.parse_cron(runner.run(inv.argv, env=inv.env, check=False))
    elif verb == "login":
        inv = tool.user_login(uri=uri)
        out["url"] = tool.parse_user_login(runner.run(inv.argv, env=inv.env, check=False))
    out["ok"] = True
except BarracudaError as exc:
    out.update(ok=False, error=str(exc))
print(json.dumps(out))
"""


def sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def py(box: Box, script: str, *args: str) -> dict[str, object]:
    proc = box.run([PYTHON, "-c", script, *args], timeout=1800)
    data: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def sql(box: Box, query: str) -> str:
    return box.run(["mariadb", "-N", "-B", "-e", query]).stdout.strip()


@pytest.fixture(scope="module")
def box(box_prereqs: None, request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    tree = fixture_tree("pressflow-7.101")
    with installed_box(request.config) as installed:
        installed.copy_in(tree, ROOT)
        yield installed


@pytest.fixture(scope="module")
def platform(box: Box) -> dict[str, object]:
    box.run(["mkdir", "-p", f"{ROOT}/sites/{DOMAIN}/files", f"{ROOT}/sites/{DOMAIN}/private/files",
             f"{ROOT}/sites/{DOMAIN}/private/temp", "/srv/secrets"])
    box.run(["mariadb", "-e", f"CREATE DATABASE {DB}; "
             f"CREATE USER '{DB}'@'localhost' IDENTIFIED BY {sql_str(DB_PASSWORD)}; "
             f"GRANT ALL ON {DB}.* TO '{DB}'@'localhost';"])
    return py(box, RENDER, ROOT, DOMAIN, CREDENTIALS, DB, DB_PASSWORD)


def test_detects_the_platform(platform: dict[str, object]) -> None:
    assert platform["core"] == "drupal7"
    assert platform["version"] == "7.101"
    assert platform["fork"] == "pressflow"
    assert platform["docroot"] == ""
    assert platform["profiles"] == ["minimal", "standard"]


def test_settings_keep_the_password_outside_the_platform(box: Box,
                                                         platform: dict[str, object]) -> None:
    settings = box.read_file(f"{ROOT}/sites/{DOMAIN}/settings.php")
    assert "Managed by barracuda" in settings
    assert CREDENTIALS in settings
    assert box.run(["php", "-l", f"{ROOT}/sites/{DOMAIN}/settings.php"]).returncode == 0
    found = box.run(["grep", "-rlF", "--", DB_PASSWORD, ROOT], check=False)
    assert found.returncode == 1, f"password found in the platform: {found.stdout}"


def test_a_missing_profile_is_refused_before_anything_is_written(
        box: Box, platform: dict[str, object]) -> None:
    out = py(box, RUN, ROOT, f"https://{DOMAIN}", "install", "nosuchprofile")
    assert out["ok"] is False
    assert "nosuchprofile" in str(out["error"]) and "\n" not in str(out["error"])
    assert sql(box, f"SELECT COUNT(*) FROM information_schema.tables "
                    f"WHERE table_schema = '{DB}'") == "0"


def test_install_status_cron_login(box: Box, platform: dict[str, object]) -> None:
    installed = py(box, RUN, ROOT, f"https://{DOMAIN}", "install", "standard")
    assert installed == {"ok": True, "password_printed": False}, installed
    tables = int(sql(box, f"SELECT COUNT(*) FROM information_schema.tables "
                          f"WHERE table_schema = '{DB}'"))
    assert tables > 60, tables
    assert sql(box, f"SELECT name FROM {DB}.users WHERE uid = 1") == "admin"
    assert sql(box, f"SELECT status FROM {DB}.system WHERE name = 'node'") == "1"

    status = py(box, RUN, ROOT, f"https://{DOMAIN}", "status")
    assert status["ok"] and status["bootstrap"] and status["db"], status
    assert status["version"] == "7.101" and status["profile"] == "standard"
    assert status["site_name"] == "Box site"
    assert status["pending"] == 0 and isinstance(status["system"], int)
    assert status["system"] >= 7080

    sql(box, f"UPDATE {DB}.variable SET value = 'i:0;' WHERE name = 'cron_last'")
    assert py(box, RUN, ROOT, f"https://{DOMAIN}", "cron") == {"ok": True}
    cron_last = sql(box, f"SELECT value FROM {DB}.variable WHERE name = 'cron_last'")
    assert re.fullmatch(r"i:\d{10};", cron_last), cron_last

    login = py(box, RUN, ROOT, f"https://{DOMAIN}", "login")
    url = str(login["url"])
    match = re.fullmatch(rf"https://{re.escape(DOMAIN)}/user/reset/1/(\d+)/([A-Za-z0-9_-]{{43}})"
                         r"/login", url)
    assert match, url

    # The link really logs in: Drupal, served by PHP's own web server, answers it with a
    # session cookie and a redirect to the account page.
    box.run(["sh", "-c", f"cd {ROOT} && (php -S 127.0.0.1:8088 >/tmp/php-s.log 2>&1 &)"])
    path = url.split(DOMAIN, 1)[1]
    headers = box.run(["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do curl -s -o /dev/null "
                       f"-D - -H 'Host: {DOMAIN}' 'http://127.0.0.1:8088{path}' && exit 0; "
                       "sleep 0.5; done; exit 1"]).stdout
    assert re.search(r"^HTTP/1\.[01] 302", headers, re.M), headers
    assert re.search(r"^Set-Cookie: S?SESS[0-9a-f]+=", headers, re.M | re.I), headers
    assert "user/1/edit" in headers, headers

    # A second install over the installed site is Drupal's own refusal, on one line.
    again = py(box, RUN, ROOT, f"https://{DOMAIN}", "install", "standard")
    assert again["ok"] is False and "existing database" in str(again["error"]), again
