"""Database backups on a fresh box (one installed box, the tests run in order on it):
back up, drop, restore with identical CHECKSUM TABLE; restore over an existing database;
rotation under a controlled clock; a filesystem too small (refused before starting, and a
run that fills it is marked incomplete) with old backups and databases untouched; a killed
run left incomplete and never counted; the cron job's command in cron's environment; a site
backed up with `octopus backup` served again from a fresh instance after `octopus restore`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.box.boxes import Box

REPO = Path(__file__).resolve().parents[2]
BASE = "/data/disk/arch/sql"
SHOP = """
CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE shop;
CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100), price DECIMAL(10,2),
                    data BLOB) ENGINE=InnoDB;
CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, item INT, at DATETIME) ENGINE=InnoDB;
CREATE TRIGGER items_ai AFTER INSERT ON items FOR EACH ROW
  INSERT INTO log (item, at) VALUES (NEW.id, NOW());
CREATE PROCEDURE add_item(n VARCHAR(100)) INSERT INTO items (name, price) VALUES (n, 1);
CREATE EVENT prune_log ON SCHEDULE EVERY 1 DAY
  DO DELETE FROM log WHERE at < NOW() - INTERVAL 30 DAY;
INSERT INTO items (name, price, data) SELECT CONCAT('item ', seq), seq * 1.5, RANDOM_BYTES(200)
  FROM seq_1_to_20000;
CALL add_item('ünïcödé ☃ 🐟');
"""
TABLES = "shop.items, shop.log"


@pytest.fixture(scope="module")
def box(variant_box: Box) -> Iterator[Box]:
    variant_box.install_project(REPO)
    yield variant_box


def sql(box: Box, query: str) -> str:
    return box.run(["mariadb", "--batch", "--skip-column-names", "-e", query]).stdout


def checksums(box: Box, tables: str = TABLES) -> dict[str, str]:
    """CHECKSUM TABLE of `tables`, by table name without the database."""
    rows = [line.split("\t") for line in sql(box, f"CHECKSUM TABLE {tables}").splitlines()]
    return {name.split(".", 1)[1]: value for name, value in rows}


def backups(box: Box, *args: str) -> list[dict[str, Any]]:
    listed = json.loads(box.run(["barracuda", "backup", "list", "--json", *args]).stdout)
    return list(listed["backups"])


def test_install_schedules_the_backup_and_makes_its_directory(box: Box) -> None:
    cron = box.read_file("/etc/cron.d/barracuda-backup")
    assert "\n15 1 * * * root /usr/local/sbin/barracuda backup run --quiet\n" in cron
    for path in (BASE, "/data/disk/arch"):
        directory = box.host.file(path)
        assert directory.is_directory and directory.mode == 0o700 and directory.user == "root"
    # The job's command works in cron's bare environment (the file's SHELL and PATH only).
    cron_path = re.search(r"^PATH=(\S+)$", cron, re.M)
    assert cron_path
    run = box.run(["env", "-i", "SHELL=/bin/sh", f"PATH={cron_path[1]}", "HOME=/root", "/bin/sh",
                   "-c", "/usr/local/sbin/barracuda backup run --quiet"])
    assert run.stderr == ""
    assert [b["status"] for b in backups(box)] == ["good"]
    box.run(f"rm -rf {BASE}/*")


def test_backup_drop_restore_gives_identical_checksums(box: Box) -> None:
    box.run(["mariadb", "--batch"], input=SHOP)
    before = checksums(box)
    assert set(before) == {"items", "log"} and before["items"] not in ("", "0", "NULL"), before
    result = box.run(["barracuda", "backup", "run", "--drill"])
    assert "verified with a drill" in result.stderr
    [backup] = backups(box)
    assert backup["status"] == "good" and backup["verification"]["drill"] is True
    assert backup["databases"] == ["mysql", "shop"]
    path = backup["path"]
    assert box.host.file(path).mode == 0o700
    for name in ("manifest.json", "mysql.sql.zst", "shop.sql.zst"):
        assert box.host.file(f"{path}/{name}").mode == 0o600
    manifest = json.loads(box.read_file(f"{path}/manifest.json"))
    shop = next(d for d in manifest["databases"] if d["database"] == "shop")
    assert shop["rows"] == {"items": 20001, "log": 20001}  # the trigger logs each insert
    sha = box.run(["sha256sum", f"{path}/shop.sql.zst"]).stdout.split()[0]
    assert shop["sha256"] == sha
    assert manifest["server_version"] and manifest["started"] and manifest["finished"]
    # No scratch database of the drill is left behind.
    assert "barracuda_drill" not in sql(box, "SHOW DATABASES")
    listed = box.run(["barracuda", "backup", "list"]).stdout
    assert "verified" in listed and "(drill)" in listed

    sql(box, "DROP DATABASE shop")
    result = box.run(["barracuda", "backup", "restore", "shop"])
    assert f"restored shop from {backup['timestamp']} into shop" in result.stderr
    assert checksums(box) == before
    assert sql(box, "SELECT COUNT(*) FROM information_schema.ROUTINES "
                    "WHERE ROUTINE_SCHEMA='shop'").strip() == "1"
    assert sql(box, "SELECT COUNT(*) FROM information_schema.TRIGGERS "
                    "WHERE TRIGGER_SCHEMA='shop'").strip() == "1"
    assert sql(box, "SELECT COUNT(*) FROM information_schema.EVENTS "
                    "WHERE EVENT_SCHEMA='shop'").strip() == "1"
    assert "ünïcödé ☃ 🐟" in sql(box, "SELECT name FROM shop.items ORDER BY id DESC LIMIT 1")


def test_restore_over_an_existing_database_asks_and_saves_it_first(box: Box) -> None:
    good = checksums(box)
    sql(box, "DELETE FROM shop.items WHERE id <= 100")
    changed = checksums(box)
    assert changed != good
    refused = box.run(["barracuda", "backup", "restore", "shop"], check=False)
    assert refused.returncode == 2
    assert "database shop exists and this is not a terminal: pass --yes" in refused.stderr
    assert checksums(box) == changed
    result = box.run(["barracuda", "backup", "restore", "shop", "--yes"])
    saved = re.search(r"the replaced database was saved to (\S+)", result.stderr)
    assert saved, result.stderr
    assert saved[1].startswith(f"{BASE}/pre-restore/shop-")
    assert box.host.file(saved[1]).mode == 0o600
    assert checksums(box) == good
    # --as restores beside the live database; the saved copy holds what was replaced.
    box.run(["barracuda", "backup", "restore", "shop", "--as", "shop_copy"])
    copy = "shop_copy.items, shop_copy.log"
    assert checksums(box, copy) == good
    box.run(["sh", "-c", f"zstd -dc {saved[1]} | mariadb shop_copy"])
    assert checksums(box, copy) == changed
    sql(box, "DROP DATABASE shop_copy")
    assert len(backups(box)) == 1  # pre-restore copies are not backup sets
    own = box.run(["barracuda", "backup", "restore", "mysql", "--yes"], check=False)
    assert own.returncode == 1 and "database mysql is the server's own" in own.stderr


def test_killed_run_is_incomplete_and_never_counted(box: Box) -> None:
    [good] = backups(box)
    # A session holding a write lock on shop.items stalls the run at the shop database (its
    # row count or its dump); the run is then killed with everything it started (its own
    # process group).
    box.run("setsid sh -c 'echo $$ > /tmp/locker; exec mariadb -e "
            "\"LOCK TABLES shop.items WRITE; SELECT SLEEP(60)\"' >/dev/null 2>&1 &")
    box.run("setsid sh -c 'echo $$ > /tmp/run; exec barracuda backup run -q' "
            ">/dev/null 2>&1 &")
    box.run(f"for i in $(seq 100); do ls {BASE}/*/INCOMPLETE && exit 0; sleep 0.1; done; "
            "exit 1")
    box.run("sleep 1; kill -9 -$(cat /tmp/run) -$(cat /tmp/locker)")
    box.run("while pgrep -s $(cat /tmp/run) >/dev/null; do sleep 0.1; done")
    # The server keeps the sessions of killed clients until their statements end.
    for session in sql(box, "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> "
                            "CONNECTION_ID() AND (INFO LIKE 'SELECT SLEEP%' OR INFO LIKE "
                            "'%COUNT(*) FROM `shop`%')").split():
        box.run(["mariadb", "-e", f"KILL {session}"], check=False)  # may have ended by now
    states = {b["timestamp"]: b["status"] for b in backups(box)}
    killed = next(stamp for stamp, status in states.items() if stamp != good["timestamp"])
    assert states == {good["timestamp"]: "good", killed: "incomplete"}
    assert f"{killed}" in box.run(["barracuda", "backup", "list"]).stdout
    # Restores take the good set; the next good run removes the incomplete one.
    result = box.run(["barracuda", "backup", "restore", "shop", "--as", "shop_check"])
    assert f"from {good['timestamp']}" in result.stderr
    sql(box, "DROP DATABASE shop_check")
    box.run(["sleep", "1"])
    box.run(["barracuda", "backup", "run", "-q"])
    after = backups(box)
    assert killed not in [b["timestamp"] for b in after]
    assert [b["status"] for b in after] == ["good"] * len(after)


def test_rotation_under_a_controlled_clock_keeps_exactly_the_configured_set(box: Box) -> None:
    box.write_file("/root/rotation.cnf",
                   "_DB_BACKUPS_TTL=2\n_DB_BACKUPS_WEEKLY=3\n_DB_BACKUPS_MONTHLY=2\n", 0o600)
    real = backups(box)[0]["timestamp"]
    # Every third day from Tue 2027-01-19 to Mon 2027-02-15 (ISO weeks 3 to 7).
    days = ["01-19", "01-22", "01-25", "01-28", "01-31", "02-03", "02-06", "02-09", "02-12",
            "02-15"]
    for day in days:
        box.run(["barracuda", "backup", "run", "-q", "-c", "/root/rotation.cnf",
                 "--now", f"2027-{day}T01:15:00"])
    left = [b["timestamp"] for b in backups(box)]
    # daily: 02-15, 02-12; weekly: W07 (02-15), W06 (02-12), W05 (02-06);
    # monthly: 2027-02 (02-15), 2027-01 (01-31). The real-time set of today is older than
    # all of them and not kept by any rule.
    assert left == ["20270131-011500", "20270206-011500", "20270212-011500",
                    "20270215-011500"], left
    assert real not in left
    assert all(b["status"] == "good" for b in backups(box))


def test_too_small_filesystem_fails_cleanly_and_touches_nothing(box: Box) -> None:
    box.run(["rm", "-rf", BASE])
    box.run(["install", "-d", "-m", "0700", BASE])
    plan = json.loads(box.run(["barracuda", "backup", "run", "--dry-run", "--json"]).stdout)
    size_mib = plan["estimate"]["needed"] // (1 << 20) + 8
    box.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0700", "tmpfs", BASE])
    try:
        box.run(["barracuda", "backup", "run", "-q"])
        [first] = backups(box)
        assert first["status"] == "good"
        sums = box.run(f"cd {first['path']} && sha256sum *").stdout
        data = checksums(box)
        # Leave 16 KiB free: less than the reserve and less than one dump.
        free = int(box.run(["df", "--output=avail", "-B1", BASE]).stdout.split()[-1])
        box.run(["fallocate", "-l", str(free - 16384), f"{BASE}/filler"])

        refused = box.run(["barracuda", "backup", "run"], check=False)
        assert refused.returncode == 1
        assert f"error: not enough space in {BASE} for a backup: needs about" in refused.stderr
        assert [b["timestamp"] for b in backups(box)] == [first["timestamp"]]
        incidents = [json.loads(line) for line in
                     box.read_file("/var/log/barracuda/incidents.log").splitlines()]
        assert incidents[-1]["check"] == "backup-space"
        assert incidents[-1]["action"] == "backup not started; old backups untouched"

        full = box.run(["barracuda", "backup", "run", "--no-space-check", "--now",
                        "2030-01-01T00:00:00"], check=False)
        assert full.returncode == 1
        assert "is incomplete: no space left" in full.stderr, full.stderr
        statuses = {b["timestamp"]: b["status"] for b in backups(box)}
        assert statuses == {first["timestamp"]: "good", "20300101-000000": "incomplete"}
        listed = box.run(["barracuda", "backup", "list"]).stdout
        assert re.search(r"20300101-000000 .* INCOMPLETE", listed), listed
        # A restore never takes the incomplete set, and the good one is untouched.
        assert box.run(f"cd {first['path']} && sha256sum *").stdout == sums
        box.run(["barracuda", "backup", "verify", first["timestamp"]])
        assert checksums(box) == data
        # A later good run (space again) removes the incomplete set, keeps the good one.
        box.run(["rm", "-f", f"{BASE}/filler"])
        box.run(["barracuda", "backup", "run", "-q", "--now", "2030-01-02T00:00:00"])
        statuses = {b["timestamp"]: b["status"] for b in backups(box)}
        assert statuses == {first["timestamp"]: "good", "20300102-000000": "good"}
    finally:
        box.run(["umount", BASE], check=False)


SITE = "shop.example.org"
SITE_DIR = f"/data/disk/o1/platforms/web/sites/{SITE}"
# A read-only front controller: the site's content is a file of its files/ directory and the
# rows of its database, both printed, so "the same content" means files and data came back.
SITE_PHP = r"""<?php
header('Content-Type: text/plain');
$db = new mysqli($_SERVER['db_host'], $_SERVER['db_user'], $_SERVER['db_passwd'],
                 $_SERVER['db_name']);
if ($db->connect_errno) { http_response_code(500); echo "db error\n"; exit; }
echo file_get_contents($_SERVER['site_files'] . '/hello.txt');
foreach ($db->query("SELECT id, note FROM notes ORDER BY id") as $row) {
    echo $row['id'], ' ', $row['note'], "\n";
}
"""


def octopus(box: Box, *args: str, check: bool = True) -> Any:
    return box.run(["octopus", *args], check=check)


def page(box: Box) -> tuple[str, str]:
    """The site's front page, past the Speed Booster (its microcache would answer for the
    site for a few seconds after it is gone)."""
    code = box.run(f"curl -s -o /tmp/page -w '%{{http_code}}' -H 'Host: {SITE}' "
                   "-H 'Cookie: NoCacheID=1' http://127.0.0.1/").stdout.strip()
    return code, box.read_file("/tmp/page")


def served(box: Box, seconds: float = 15) -> tuple[str, str]:
    """The page once the site answers 200: a converge's Nginx reload is asynchronous (its
    old workers may answer for a moment, on a loaded machine for longer)."""
    deadline = time.monotonic() + seconds
    while True:
        code, body = page(box)
        if code == "200" or time.monotonic() > deadline:
            return code, body
        time.sleep(0.5)


def archive_of(box: Box, *args: str) -> str:
    made = json.loads(octopus(box, "backup", *args, "--json").stdout)
    return str(made["archive"])


def test_octopus_site_backup_restores_into_a_fresh_instance(box: Box) -> None:
    box.write_file("/root/platform-web/index.php", SITE_PHP)
    octopus(box, "install", "o1", "--yes")
    octopus(box, "platform", "add", "o1", "web", "--path", "/root/platform-web", "--yes")
    octopus(box, "site", "add", "o1", SITE, "--platform", "web", "--yes")
    box.write_file(f"{SITE_DIR}/files/hello.txt", "hello from the files directory\n")
    [site] = json.loads(octopus(box, "site", "list", "o1", "--json").stdout)["sites"]
    box.run(["mariadb", site["database"]], input=(
        "CREATE TABLE notes (id INT PRIMARY KEY, note VARCHAR(100)) CHARACTER SET utf8mb4;\n"
        "INSERT INTO notes VALUES (1, 'first'), (2, 'ünïcödé ☃'), (3, 'third');\n"))
    code, before = served(box)
    assert code == "200", before
    assert before == "hello from the files directory\n1 first\n2 ünïcödé ☃\n3 third\n"

    one = archive_of(box, "o1", SITE)
    everything = archive_of(box, "o1")
    for path in (one, everything):
        assert path.startswith("/data/disk/o1/backups/") and path.endswith(".tar.zst")
        assert box.host.file(path).mode == 0o600
    octopus(box, "site", "remove", "o1", SITE, "--yes")
    assert page(box)[1] != before

    # The site archive into a fresh instance (the platform comes from its recorded source).
    octopus(box, "install", "o2", "--yes")
    octopus(box, "restore", "o2", SITE, one, "--yes")
    assert served(box) == ("200", before)
    assert box.host.file(f"/data/disk/o2/platforms/web/sites/{SITE}/files/hello.txt").user \
        == "o2.web"
    again = octopus(box, "restore", "o2", SITE, one, "--yes", check=False)
    assert again.returncode == 3 and f"{SITE} is served by site {SITE} of instance o2" in \
        again.stderr

    # The whole-instance archive into another fresh instance, the platform's source gone:
    # its code comes from the archive.
    octopus(box, "site", "remove", "o2", SITE, "--yes")
    box.run(["rm", "-rf", "/root/platform-web"])
    octopus(box, "install", "o3", "--yes")
    octopus(box, "restore", "o3", SITE, everything, "--yes")
    assert served(box) == ("200", before)
    assert box.host.file("/data/disk/o3/platforms/web/index.php").user == "o3"
    rerun = octopus(box, "up-stable", "o3", "--yes")
    assert [x for x in rerun.stderr.splitlines() if re.match(r"\d+ changed, ", x)][-1] \
        .startswith("0 changed, "), rerun.stderr[-2000:]


def test_second_install_changes_nothing(box: Box) -> None:
    result = box.run(["barracuda", "install", "--yes"])
    line = [x for x in result.stderr.splitlines() if re.match(r"\d+ changed, ", x)][-1]
    assert line.startswith("0 changed, "), result.stderr[-2000:]
