"""Octopus end to end on a fresh Debian 12 box with systemd: two instances, each with a site
on a small PHP platform; real HTTP and HTTPS through Nginx, real SQL, isolation checked from
PHP and from the shell, idempotent upgrades, one-line errors, and removal with a backup."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.box.boxes import Box
from tests.box.conftest import installed_box, octopus
from tests.box.test_install import summary

# The platform: a front controller that uses the credentials Nginx hands it, and a few
# probes the isolation tests call.
INDEX_PHP = r"""<?php
header('Content-Type: text/plain');
$host = $_SERVER['HTTP_HOST'];
mysqli_report(MYSQLI_REPORT_OFF);
if (isset($_GET['read'])) {
    echo @file_get_contents($_GET['read']) === false ? "DENIED" : "READABLE";
    exit;
}
if (isset($_GET['db'])) {
    $c = @new mysqli($_SERVER['db_host'], $_SERVER['db_user'], $_SERVER['db_passwd'],
                     $_GET['db']);
    echo $c->connect_errno ? "DBDENIED" : "DBOK";
    exit;
}
if (isset($_GET['write'])) {
    $files = @file_put_contents($_SERVER['site_files'] . '/probe.txt', $host);
    $code = @file_put_contents(__DIR__ . '/probe.txt', $host);
    echo ($files ? "FILES_WRITABLE" : "FILES_DENIED") . " "
        . ($code ? "CODE_WRITABLE" : "CODE_DENIED");
    exit;
}
$db = new mysqli($_SERVER['db_host'], $_SERVER['db_user'], $_SERVER['db_passwd'],
                 $_SERVER['db_name']);
if ($db->connect_errno) {
    http_response_code(500);
    echo "db error: " . $db->connect_error;
    exit;
}
$db->query("CREATE TABLE IF NOT EXISTS hits (host VARCHAR(255))");
$db->query("INSERT INTO hits VALUES ('" . $db->real_escape_string($host) . "')");
$n = $db->query("SELECT COUNT(*) FROM hits")->fetch_row()[0];
echo "site=$host db={$_SERVER['db_name']} hits=$n\n";
"""

SITES = {"o1": "one.example.org", "o2": "two.example.org"}


@pytest.fixture(scope="module")
def box(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[Box]:
    with installed_box(request.config) as installed:
        yield installed



def get(box: Box, host: str, query: str = "", *, https: bool = False) -> tuple[str, str]:
    """(status, body) of the site `host`, asked on loopback."""
    if https:
        cmd = (f"curl -sk -o /tmp/body -w '%{{http_code}}' --resolve {host}:443:127.0.0.1 "
               f"'https://{host}/{query}'")
    else:
        cmd = f"curl -s -o /tmp/body -w '%{{http_code}}' -H 'Host: {host}' 'http://127.0.0.1/{query}'"
    code = box.run(cmd).stdout.strip()
    return code, box.read_file("/tmp/body")


@pytest.fixture(scope="module")
def instances(box: Box) -> dict[str, str]:
    for name, domain in SITES.items():
        box.write_file(f"/root/platform-{name}/index.php", INDEX_PHP)
        octopus(box, "install", name, "--email", f"ops@{domain}", "--yes")
        octopus(box, "platform", "add", name, "web", "--path", f"/root/platform-{name}",
                "--yes")
        octopus(box, "site", "add", name, domain, "--platform", "web", "--alias",
                f"www.{domain}", "--yes")
    return SITES


def test_each_site_writes_and_reads_its_own_database(box: Box,
                                                     instances: dict[str, str]) -> None:
    for name, domain in instances.items():
        for https in (False, True):
            code, body = get(box, domain, https=https)
            assert code == "200", body
            assert body.startswith(f"site={domain} db={name}_") and " hits=" in body, body
        code, body = get(box, f"www.{domain}")
        assert code == "200" and body.startswith(f"site=www.{domain}"), body
    # Each site's rows are in its own database only.
    rows = box.run("mariadb -N -e 'SELECT COUNT(*) FROM o1_one_example_org.hits'").stdout
    assert int(rows) >= 3
    assert box.run("mariadb -N -e 'SHOW TABLES FROM o2_two_example_org'").stdout.strip() == (
        "hits")


def test_https_uses_the_kept_self_signed_wildcard(box: Box, instances: dict[str, str]) -> None:
    out = box.run("echo | openssl s_client -connect 127.0.0.1:443 -servername "
                  "one.example.org 2>/dev/null | openssl x509 -noout -subject -issuer").stdout
    subject = re.search(r"subject=.*CN\s*=\s*(\S+)", out)
    assert subject and subject.group(1).startswith("*."), out
    key = box.host.file("/etc/ssl/private/barracuda-wildcard.key")
    assert (key.user, key.mode) == ("root", 0o600)


def test_unknown_host_gets_the_default_server(box: Box, instances: dict[str, str]) -> None:
    code, _ = get(box, "nobody.example.org")
    assert code == "404"


def test_php_isolation_open_basedir_and_permissions(box: Box,
                                                    instances: dict[str, str]) -> None:
    one = instances["o1"]
    # open_basedir on its own: a world-readable file outside the instance is refused.
    assert box.run("test -r /etc/hostname").returncode == 0
    assert get(box, one, "?read=/etc/hostname")[1] == "DENIED"
    assert get(box, one, "?read=/etc/shadow")[1] == "DENIED"
    assert get(box, one, "?read=/data/disk/o2/platforms/web/index.php")[1] == "DENIED"
    # Unix permissions on their own: PHP as o1's web user, without any php.ini (so without
    # open_basedir), still cannot read o2's code.
    leak = box.run(["runuser", "-u", "o1.web", "--", "php", "-n", "-r",
                    "echo @file_get_contents('/data/disk/o2/platforms/web/index.php') === false"
                    " ? 'DENIED' : 'LEAK';"]).stdout
    assert leak == "DENIED"
    # The instance's own files are readable by its PHP.
    assert get(box, one, "?read=/data/disk/o1/platforms/web/index.php")[1] == "READABLE"


def test_database_isolation(box: Box, instances: dict[str, str]) -> None:
    one = instances["o1"]
    assert get(box, one, "?db=o1_one_example_org")[1] == "DBOK"
    assert get(box, one, "?db=o2_two_example_org")[1] == "DBDENIED"
    assert get(box, one, "?db=mysql")[1] == "DBDENIED"


def test_web_user_writes_files_but_not_code(box: Box, instances: dict[str, str]) -> None:
    _, body = get(box, instances["o1"], "?write=1")
    assert body == "FILES_WRITABLE CODE_DENIED", body
    probe = box.host.file("/data/disk/o1/platforms/web/sites/one.example.org/files/probe.txt")
    assert probe.exists and probe.user == "o1.web"


def test_shell_users_cannot_read_other_instances(box: Box, instances: dict[str, str]) -> None:
    for user in ("o1", "o1.ftp", "o1.web"):
        listing = box.run(["runuser", "-u", user, "--", "ls", "/data/disk/o2"], check=False)
        assert listing.returncode != 0, user
        read = box.run(["runuser", "-u", user, "--", "cat",
                        "/data/disk/o2/platforms/web/index.php"], check=False)
        assert read.returncode != 0 and "Permission denied" in read.stderr, user
    config = box.run(["runuser", "-u", "o1", "--", "cat",
                      "/data/disk/o1/config/sites/one.example.org.yml"], check=False)
    assert config.returncode != 0  # the site's record holds its password: root only


def test_instance_layout_and_pool(box: Box, instances: dict[str, str]) -> None:
    host = box.host
    root = host.file("/data/disk/o1")
    assert (root.user, root.mode) == ("o1", 0o711)
    assert host.file("/data/disk/o1/config").mode == 0o700
    assert host.file("/root/.o1.octopus.cnf").mode == 0o600
    assert 'ops@one.example.org' in host.file("/root/.o1.octopus.cnf").content_string
    assert host.user("o1.web").group == "o1"
    assert "o1" in host.user("www-data").groups
    sockets = host.run("ls /run/php/").stdout
    assert re.search(r"o1\.\d\.\d\.sock", sockets) and re.search(r"o2\.\d\.\d\.sock", sockets)
    workers = host.run("ps -eo user:20,args | grep 'php-fpm: pool o1' | grep -v grep").stdout
    assert all(line.split()[0] == "o1.web" for line in workers.splitlines())
    status = octopus(box, "status", "o1").stdout
    assert "site one.example.org on web" in status and "last converge:" in status


def test_up_stable_all_twice_changes_nothing_the_second_time(
        box: Box, instances: dict[str, str]) -> None:
    octopus(box, "up-stable", "all", "--yes")
    again = octopus(box, "up-stable", "all", "--yes")
    lines = [line for line in again.stderr.splitlines() if re.match(r"\d+ changed, ", line)]
    assert len(lines) == 2 and all(line.startswith("0 changed, ") for line in lines), (
        again.stderr[-2000:])
    assert "2 instances" in again.stderr and "all converged" in again.stderr


def tree_digest(box: Box) -> str:
    return box.run("find /data/disk /etc/nginx /var/aegir /etc/php /root -xdev -type f "
                   "-not -path '*/log/*' -not -name '.bash_history' -exec sha256sum {} + "
                   "| sort").stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    (["install", "1abc", "--yes"], 3, 'bad instance name "1abc"'),
    (["install", "admin", "--yes"], 3, "reserved"),
    (["install", "my_site", "--yes"], 3, "bad instance name"),
    (["install", "drupal1", "--yes"], 3, 'may not contain "drupal"'),
    (["install", "www-data", "--yes"], 3, "reserved"),
    (["up-stable", "o9", "--yes"], 3, 'unknown instance "o9"'),
    (["site", "add", "o9", "x.example.org", "--platform", "web", "--yes"], 3,
     'unknown instance "o9"'),
    (["site", "add", "o2", "one.example.org", "--platform", "web", "--yes"], 3,
     "duplicate domain one.example.org: instance o1 already serves it"),
    (["site", "add", "o2", "new.example.org", "--platform", "web", "--alias",
      "www.one.example.org", "--yes"], 3, "duplicate domain www.one.example.org"),
    (["site", "add", "o1", "bad_domain", "--platform", "web", "--yes"], 3, "bad domain"),
    (["platform", "add", "o1", "empty", "--path", "/root/empty-platform", "--yes"], 3,
     "no index.php front controller"),
    (["platform", "remove", "o1", "web", "--yes"], 3, "used by one.example.org"),
    (["remove", "o1", "--yes"], 2, "pass --force"),
    (["install", "o3", "--php", "5.6", "--yes"], 3, "_PHP_FPM_VERSION"),
])
def test_bad_input_is_one_line_and_changes_nothing(box: Box, instances: dict[str, str],
                                                   args: list[str], code: int,
                                                   message: str) -> None:
    box.run("mkdir -p /root/empty-platform && echo hi > /root/empty-platform/README")
    before = tree_digest(box)
    result = octopus(box, *args, check=False)
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert tree_digest(box) == before


def test_a_site_whose_vhost_would_not_load_leaves_nothing_behind(
        box: Box, instances: dict[str, str]) -> None:
    box.write_file("/root/bad.crt", "-----BEGIN CERTIFICATE-----\nnope\n"
                   "-----END CERTIFICATE-----\n")
    before = tree_digest(box)
    result = octopus(box, "site", "add", "o1", "broken.example.org", "--platform", "web",
                     "--certificate", "/root/bad.crt", "--certificate-key", "/root/bad.crt",
                     "--yes", check=False)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "nginx -t failed on the staged change, before anything was changed" in (
        result.stderr), result.stderr[-2000:]
    assert tree_digest(box) == before
    # Validation came before the first change: no database, no account, no record.
    assert box.run("mariadb -N -e \"SHOW DATABASES LIKE 'o1\\_broken%'\"").stdout == ""
    assert box.run("mariadb -N -e \"SELECT User FROM mysql.global_priv WHERE User LIKE "
                   "'o1\\_broken%'\"").stdout == ""
    assert get(box, "one.example.org")[0] == "200"


def test_removing_o2_keeps_o1_serving_and_keeps_o2_backup(box: Box,
                                                          instances: dict[str, str]) -> None:
    # The loop runs until the removal is over (not for a fixed count, which a slow machine
    # could finish before the removal does); its first answer is in before the removal starts.
    box.run("rm -f /tmp/o1-stop /tmp/o1-loop /tmp/o1-first")
    loop = box.run(
        "nohup sh -c 'fail=0; n=0; while [ ! -e /tmp/o1-stop ]; do "
        "c=$(curl -s -m 10 -o /dev/null -w %{http_code} -H \"Host: one.example.org\" "
        "http://127.0.0.1/); [ \"$c\" = 200 ] || fail=$((fail+1)); n=$((n+1)); "
        "[ -e /tmp/o1-first ] || echo $c > /tmp/o1-first; sleep 0.05; done; "
        "echo $n $fail > /tmp/o1-loop.part && mv /tmp/o1-loop.part /tmp/o1-loop' "
        ">/dev/null 2>&1 & echo started")
    assert "started" in loop.stdout
    box.run("for i in $(seq 600); do [ -e /tmp/o1-first ] && exit 0; sleep 0.1; done; exit 1")
    try:
        result = octopus(box, "remove", "o2", "--force", "--yes")
    finally:
        box.run(["touch", "/tmp/o1-stop"])
    backup = re.search(r"instance o2 was backed up to (\S+\.tar\.zst)", result.stderr)
    assert backup, result.stderr[-2000:]
    box.run("for i in $(seq 600); do [ -e /tmp/o1-loop ] && exit 0; sleep 0.1; done; exit 1")
    sent, failures = box.read_file("/tmp/o1-loop").split()
    print(f"[octopus] requests to o1 during the removal of o2: {sent}, failed: {failures}")
    assert failures == "0" and int(sent) > 1, (sent, failures)
    archive = box.host.file(backup.group(1))
    assert archive.exists and archive.mode == 0o600
    listing = box.run(f"tar --zstd -tf {backup.group(1)}").stdout
    assert "manifest.json" in listing and "db/o2_two_example_org.sql.zst" in listing
    assert "tree/platforms/web/index.php" in listing
    for user in ("o2", "o2.ftp", "o2.web"):
        assert not box.host.user(user).exists
    assert not box.host.file("/data/disk/o2").exists
    assert box.run("mariadb -N -e \"SHOW DATABASES LIKE 'o2\\_%'\"").stdout.strip() == ""
    assert get(box, "one.example.org")[0] == "200"
    assert get(box, "two.example.org")[0] == "404"
    assert octopus(box, "list").stdout.split() == ["o1"]
    # o1 is now the only instance: its pool takes the whole share (docs/TUNING.md), once.
    resized = octopus(box, "up-stable", "all", "--yes").stderr
    assert "pool.d/o1.conf: changed" in resized and summary(resized).startswith("1 changed")
    assert summary(octopus(box, "up-stable", "all", "--yes").stderr).startswith("0 changed")
