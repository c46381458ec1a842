"""Undo beyond files, on a fresh Debian 12 box: a run that fails, or is stopped by SIGHUP (a
dropped SSH session), after it created a database, a database account, grants and
directories takes every one of them away again and says so; the machine is as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.box.boxes import Box
from tests.box.conftest import installed_box, octopus

INDEX_PHP = "<?php echo 'ok ' . $_SERVER['HTTP_HOST'];\n"
SITES = "/data/disk/o1/platforms/web/sites"

# Everything a site add touches: databases, accounts and grants, Linux accounts, the
# instance's tree (modes and owners) and the Nginx and PHP configuration (contents).
DIGEST = r"""
mariadb -N -e 'SHOW DATABASES'
mariadb -N -e 'SELECT User, Host FROM mysql.global_priv ORDER BY User'
mariadb -N -e 'SELECT User, Db FROM mysql.db ORDER BY User, Db'
getent passwd | grep -E '^o1' | sort
getent group | grep -E '^o1' | sort
find /data/disk/o1 -not -path '*/log/*' -printf '%p %m %u %g\n' | sort
find /etc/nginx /etc/php -type f -print0 | sort -z | xargs -0 sha256sum
"""


@pytest.fixture(scope="module")
def box(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[Box]:
    with installed_box(request.config) as installed:
        installed.write_file("/root/platform/index.php", INDEX_PHP)
        octopus(installed, "install", "o1", "--yes")
        octopus(installed, "platform", "add", "o1", "web", "--path", "/root/platform", "--yes")
        octopus(installed, "site", "add", "o1", "a.example.org", "--platform", "web", "--yes")
        yield installed


def digest(box: Box) -> str:
    return box.run(["bash", "-c", DIGEST]).stdout


def test_a_site_add_that_fails_after_its_database_was_created_leaves_nothing(
        box: Box) -> None:
    before = digest(box)
    # The platform's sites/ directory read-only: the run creates the database, the account
    # and the grants, then fails making the site's directory.
    box.run(f"mount --bind {SITES} {SITES} && mount -o remount,bind,ro {SITES}")
    try:
        result = octopus(box, "site", "add", "o1", "b.example.org", "--platform", "web",
                         "--yes", check=False)
    finally:
        box.run(f"umount {SITES}")
    assert result.returncode != 0, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, result.stderr
    assert "Read-only file system" in error[0], error
    assert "Rolled back: undid " in error[0], error
    for undone in ("created database o1_b_example_org",
                   "created database account o1_b_example_org"):
        assert undone in error[0], error
    assert digest(box) == before
    # The instance keeps serving its first site.
    code = box.run("curl -s -o /dev/null -w '%{http_code}' -H 'Host: a.example.org' "
                   "http://127.0.0.1/").stdout
    assert code == "200"


def test_a_run_stopped_by_sighup_mid_apply_leaves_the_machine_as_before(box: Box) -> None:
    before = digest(box)
    box.run("rm -f /tmp/add.out /tmp/add.rc /tmp/add.pid; setsid bash -c 'octopus site add o1 "
            "c.example.org --platform web --yes > /tmp/add.out 2>&1 & echo $! > /tmp/add.pid; "
            "wait $!; echo $? > /tmp/add.rc' < /dev/null > /dev/null 2>&1 &")
    # As soon as the run has created the site's database, hang up on it.
    hung_up = box.run(
        "for i in $(seq 1200); do "
        "  n=$(mariadb -N -e \"SELECT COUNT(*) FROM information_schema.SCHEMATA "
        "WHERE SCHEMA_NAME='o1_c_example_org'\"); "
        "  if [ \"$n\" = 1 ]; then kill -HUP \"$(cat /tmp/add.pid)\" && exit 0; fi; "
        "  sleep 0.05; "
        "done; exit 1", check=False)
    assert hung_up.returncode == 0, f"the run never created its database: {hung_up.stderr}"
    box.run("for i in $(seq 600); do [ -s /tmp/add.rc ] && exit 0; sleep 0.1; done; exit 1")
    output = box.read_file("/tmp/add.out")
    assert box.read_file("/tmp/add.rc").strip() != "0", output
    assert "stopped by SIGHUP" in output and "Rolled back" in output, output
    assert "created database o1_c_example_org" in output, output
    assert digest(box) == before
