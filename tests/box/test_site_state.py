"""A site taken off the web and back, and what a site's own PHP can reach, on a fresh Debian
12 box (systemd-bookworm) with real Drupal 7.101 sites (pressflow-7.101 of
../shared/fixtures, installed by `octopus site add --install`).

Instance o1 has two sites on one platform: A (with the dev alias dev.A) and B.

* `octopus site disable` / `enable` (issue 14): A answers 503 with Retry-After on every
  name over HTTP and HTTPS and leaves the cron file, B keeps serving; enable brings A back
  with the same database, files and settings; a second run changes nothing.
* A's PHP boundary (issue 13): code run by A's own PHP (its local.settings.php, through
  Nginx and the instance's shared pool) cannot read, list or include B's credentials,
  right after B's requests went through the same pool (the platform's tree, B's
  settings.php and private files included, is readable: see the README); it
  reaches Redis with its instance's credentials under its own prefix and cannot read,
  delete or flush another instance's keys. The instance's shell user is the owner of all its
  sites and may read them (said in the README).
* The dev alias: a PHP warning is shown on dev.A and never on A; dev.A gets no Speed
  Booster HIT while A does."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.box.boxes import Box
from tests.box.conftest import installed_box, octopus
from tests.box.fixtures import fixture_tree
from tests.box.test_install import REPO

A, B = "a.example.org", "b.example.org"
DEV = f"dev.{A}"
SITE_NAME = "State box"
PLATFORM = "/data/disk/o1/platforms/d7"
SECRETS = "/data/disk/o1/secrets"
RETRY_AFTER = str(yaml.safe_load((REPO / "profiles/nginx.yml").read_text())["disabled"]
                  ["retry_after_s"])
ADMIN_REDIS = yaml.safe_load((REPO / "profiles/paths.yml").read_text())["health_secret"]


def site_dir(domain: str) -> str:
    return f"{PLATFORM}/sites/{domain}"


# Site A's own PHP: its local.settings.php (included by its settings.php on every request,
# before Drupal reaches its database). ?bprobe=... runs one probe; anything else is the
# ordinary site.
PROBE = r"""<?php
// Written by tests/box/test_site_state.py.
if (isset($_GET['bprobe'])) {
  $barracuda_probe = $_GET['bprobe'];
  if ($barracuda_probe === 'warn') {
    // PHP's own error display, without Drupal's handler in between.
    set_error_handler(NULL);
    trigger_error('BARRACUDA-PROBE-WARNING', E_USER_WARNING);
    restore_error_handler();
  }
  elseif ($barracuda_probe === 'drupal') {
    // Through Drupal's handler: shown as a message where error_level allows it.
    trigger_error('BARRACUDA-PROBE-DRUPAL', E_USER_WARNING);
  }
  else {
    header('Content-Type: application/json');
    $out = ['basedir' => ini_get('open_basedir'), 'warnings' => []];
    set_error_handler(function ($no, $str) use (&$out) { $out['warnings'][] = $str; return TRUE; });
    if ($barracuda_probe === 'reach') {
      foreach (READ as $path) {
        $out['read'][$path] = file_get_contents($path) !== FALSE;
      }
      foreach (LIST as $path) {
        $out['list'][$path] = scandir($path) !== FALSE;
      }
      foreach (INCLUDE as $path) {
        $got = include $path;
        $out['include'][$path] = is_array($got);
      }
    }
    elseif ($barracuda_probe === 'redis') {
      $creds = include OWN;
      $redis = new Redis();
      $out['connect'] = $redis->connect($creds['redis']['host'], $creds['redis']['port'], 2);
      $out['auth'] = $redis->auth([$creds['redis']['username'], $creds['redis']['password']]);
      $calls = [
        'set_own' => fn() => $redis->set('o1:a.example.org:probe', 'mine'),
        'get_own' => fn() => $redis->get('o1:a.example.org:probe'),
        'get_other' => fn() => $redis->get('o2:secret'),
        'del_other' => fn() => $redis->del('o2:secret'),
        'set_other' => fn() => $redis->set('o2:secret', 'taken'),
        'flushall' => fn() => $redis->flushAll(),
        'flushdb' => fn() => $redis->flushDB(),
        'keys' => fn() => $redis->keys('*'),
      ];
      foreach ($calls as $name => $call) {
        $redis->clearLastError();
        try {
          $value = $call();
          $out[$name] = ['value' => $value, 'error' => $redis->getLastError()];
        }
        catch (Throwable $e) {
          $out[$name] = ['value' => FALSE, 'error' => $e->getMessage()];
        }
      }
    }
    echo json_encode($out), "\n";
    exit;
  }
}
"""

# A and B share one platform, whose whole tree each site's PHP may read (Drupal 7 makes its
# files' directories by testing each parent from sites/ down): what stays B's own from A's
# PHP is its credentials file.
THEIRS_READ = [f"{SECRETS}/{B}.php"]
OWN_READ = [f"{SECRETS}/{A}.php", f"{site_dir(A)}/settings.php",
            f"{site_dir(A)}/private/files/secret.txt", f"{PLATFORM}/index.php"]
THEIRS_LIST = [SECRETS]
OWN_LIST = [site_dir(A), f"{site_dir(A)}/private/files", f"{PLATFORM}/modules"]


def php_list(paths: list[str]) -> str:
    return "[" + ", ".join(f"'{p}'" for p in paths) + "]"


def http(box: Box, host: str, path: str = "/", *, https: bool = False,
         args: tuple[str, ...] = ()) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of `path` on `host`, asked on loopback."""
    url = (f"https://{host}{path}" if https else f"http://127.0.0.1{path}")
    where = ["--resolve", f"{host}:443:127.0.0.1", "-k"] if https else ["-H", f"Host: {host}"]
    box.run(["curl", "-s", "-o", "/tmp/body", "-D", "/tmp/headers", *where, *args, url])
    raw = box.read_file("/tmp/headers")
    headers = {}
    for line in raw.splitlines()[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(raw.split()[1]), headers, box.read_file("/tmp/body")


def probe(box: Box, name: str, host: str = A) -> dict[str, Any]:
    status, _, body = http(box, host, f"/?bprobe={name}&nocache=1")
    assert status == 200, (status, body[:2000])
    return json.loads(body)  # type: ignore[no-any-return]


def sql(box: Box, query: str) -> str:
    return box.run(["mariadb", "-N", "-B", "-e", query]).stdout.strip()


@pytest.fixture(scope="module")
def box(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[Box]:
    tree = fixture_tree("pressflow-7.101")
    with installed_box(request.config) as installed:
        installed.copy_in(tree, "/root/d7")
        # Drupal asks its own site over HTTP (cron, the status report).
        installed.run(["sh", "-c", f"echo '127.0.0.1 {A} {DEV} {B}' >> /etc/hosts"])
        octopus(installed, "install", "o1", "--email", f"ops@{A}", "--yes")
        octopus(installed, "platform", "add", "o1", "d7", "--path", "/root/d7", "--yes")
        for domain, extra in ((A, ["--alias", DEV]), (B, [])):
            added = octopus(installed, "site", "add", "o1", domain, "--platform", "d7",
                            *extra, "--install", "--site-name", SITE_NAME, "--yes",
                            check=False)
            assert added.returncode == 0, added.stderr[-3000:]
        for domain in (A, B):
            for where, text in (("private/files/secret.txt", f"PRIVATE-OF-{domain}\n"),
                                ("files/public.txt", f"PUBLIC-OF-{domain}\n")):
                installed.write_file(f"{site_dir(domain)}/{where}", text, 0o640)
                installed.run(["chown", "o1.web:o1", f"{site_dir(domain)}/{where}"])
        probe_php = (PROBE.replace("READ", php_list(THEIRS_READ + OWN_READ))
                     .replace("LIST", php_list(THEIRS_LIST + OWN_LIST))
                     .replace("INCLUDE", php_list([f"{SECRETS}/{B}.php", f"{SECRETS}/{A}.php"]))
                     .replace("OWN", f"'{SECRETS}/{A}.php'"))
        installed.write_file(f"{site_dir(A)}/local.settings.php", probe_php, 0o640)
        installed.run(["chown", "root:o1", f"{site_dir(A)}/local.settings.php"])
        yield installed


# --------------------------------------------------------------------------- disable/enable


def data_digest(box: Box) -> str:
    """A's data: its tables that are not caches, its settings and credentials, its files."""
    db = "o1_a_example_org"
    tables = sql(box, f"SELECT GROUP_CONCAT(table_name ORDER BY table_name) FROM "
                      f"information_schema.tables WHERE table_schema = '{db}' AND table_name "
                      "NOT LIKE 'cache%' AND table_name NOT IN ('sessions', 'watchdog', "
                      "'semaphore', 'flood', 'history', 'queue', 'variable')")
    checksums = sql(box, "CHECKSUM TABLE " + ", ".join(f"{db}.{t}" for t in tables.split(",")))
    files = box.run(["sh", "-c", f"cd {site_dir(A)} && find . {SECRETS}/{A}.php -type f "
                     "-not -path './files/css/*' -not -path './files/js/*' "
                     "-not -path './files/styles/*' -not -path './private/temp/*' | sort | "
                     "xargs sha256sum"]).stdout
    return checksums + files


def title(body: str) -> str:
    match = re.search(r"<title>(.*?)</title>", body, re.S)
    return match.group(1).strip() if match else ""


def test_disable_answers_503_on_every_name_and_stops_cron(box: Box) -> None:
    status, _, before = http(box, A, "/node")
    assert status == 200 and SITE_NAME in before
    digest = data_digest(box)
    cron = "/etc/cron.d/barracuda-octopus-o1"
    assert f"octopus site cron o1 {A}" in box.read_file(cron)

    disabled = octopus(box, "site", "disable", "o1", A, "--yes", check=False)
    assert disabled.returncode == 0, disabled.stderr[-3000:]
    for host in (A, DEV):
        for https in (False, True):
            for path in ("/", "/node", "/user/login", "/cron.php", "/misc/drupal.js"):
                status, headers, body = http(box, host, path, https=https)
                assert status == 503, (host, https, path, status)
                assert headers.get("retry-after") == RETRY_AFTER, headers
                assert "Site disabled" in body and SITE_NAME not in body, body[:500]
    assert http(box, B, "/")[0] == 200  # its neighbour on the same platform serves
    crontab = box.read_file(cron)
    assert f"octopus site cron o1 {A}" not in crontab, crontab
    assert f"octopus site cron o1 {B}" in crontab
    refused = octopus(box, "site", "cron", "o1", A, check=False)
    assert refused.returncode != 0 and "is disabled" in refused.stderr
    listed = json.loads(octopus(box, "site", "list", "o1", "--json").stdout)["sites"]
    assert {s["domain"]: s["disabled"] for s in listed} == {A: True, B: False}
    assert data_digest(box) == digest
    again = octopus(box, "site", "disable", "o1", A, "--yes", check=False)
    assert again.returncode == 0 and "0 changed" in again.stderr, again.stderr[-2000:]

    enabled = octopus(box, "site", "enable", "o1", A, "--yes", check=False)
    assert enabled.returncode == 0, enabled.stderr[-3000:]
    status, headers, after = http(box, A, "/node")
    assert status == 200 and "retry-after" not in headers
    assert title(after) == title(before) and SITE_NAME in after
    assert http(box, A, "/", https=True)[0] == 200
    assert f"octopus site cron o1 {A}" in box.read_file(cron)
    octopus(box, "site", "cron", "o1", A)  # runs again
    assert data_digest(box) == digest
    again = octopus(box, "site", "enable", "o1", A, "--yes", check=False)
    assert again.returncode == 0 and "0 changed" in again.stderr, again.stderr[-2000:]


# --------------------------------------------------------------------------- PHP boundary


def test_a_sites_php_cannot_reach_its_neighbours_credentials(
        box: Box) -> None:
    # B's pages go through the instance's pool first (and its files into OPcache).
    for _ in range(4):
        assert http(box, B, "/?nocache=1")[0] == 200
    found = probe(box, "reach")
    for path in THEIRS_READ:
        assert found["read"][path] is False, path
    for path in THEIRS_LIST:
        assert found["list"][path] is False, path
    assert found["include"][f"{SECRETS}/{B}.php"] is False
    assert any("open_basedir restriction" in w for w in found["warnings"]), found["warnings"]
    # Controls: A's own credentials, settings, private files and code.
    for path in OWN_READ:
        assert found["read"][path] is True, path
    for path in OWN_LIST:
        assert found["list"][path] is True, path
    assert found["include"][f"{SECRETS}/{A}.php"] is True
    assert f"{SECRETS}/{B}.php" not in found["basedir"]
    assert f"{SECRETS}/{A}.php" in found["basedir"]
    # B serves on after A's request went through the same pool (its own boundary again).
    status, _, body = http(box, B, "/node?nocache=1")
    assert status == 200 and SITE_NAME in body


def test_no_open_basedir_warning_in_normal_use(box: Box) -> None:
    """The sites' own pages never touch what their boundary leaves out (Drupal's probes
    of sites/NAME for each of their names included)."""
    for host in (A, DEV, B):
        for path in ("/", "/node", "/user/login", "/rss.xml", "/user/password"):
            assert http(box, host, f"{path}?nocache=1")[0] == 200, (host, path)
    for db in ("o1_a_example_org", "o1_b_example_org"):
        found = sql(box, f"SELECT location, variables FROM {db}.watchdog WHERE variables "
                         "LIKE '%open_basedir%' OR message LIKE '%open_basedir%'")
        assert found == "", (db, found[:3000])
    logs = box.run(["sh", "-c", "grep -rl open_basedir /var/log/php* /var/log/nginx "
                    "2>/dev/null || true"]).stdout
    assert logs.strip() == "", logs


def test_the_instances_shell_user_owns_all_its_sites(box: Box) -> None:
    """From the shell the instance's user is the owner of every site of the instance (it
    runs Drush and cron for them); its FTP user and the web server read no credentials."""
    for domain in (A, B):
        assert box.run(["runuser", "-u", "o1", "--", "cat", f"{SECRETS}/{domain}.php"],
                       check=False).returncode == 0
        for user in ("o1.ftp", "www-data"):
            assert box.run(["runuser", "-u", user, "--", "cat", f"{SECRETS}/{domain}.php"],
                           check=False).returncode != 0, user


def test_a_sites_php_reaches_redis_under_its_own_prefix_only(box: Box) -> None:
    password = box.read_file(ADMIN_REDIS).strip()

    def admin(*args: str) -> str:
        return box.run(["redis-cli", "-s", "/run/redis/redis-server.sock", "--no-auth-warning",
                        *args], env={"REDISCLI_AUTH": password}).stdout.strip()

    assert admin("SET", "o2:secret", "two") == "OK"
    found = probe(box, "redis")
    assert found["connect"] is True and found["auth"] is True, found
    assert found["set_own"]["value"] is True and found["get_own"]["value"] == "mine", found
    assert admin("GET", "o1:a.example.org:probe") == "mine"
    for call in ("get_other", "del_other", "set_other", "flushall", "flushdb", "keys"):
        assert found[call]["value"] in (False, None), (call, found[call])
        assert "NOPERM" in str(found[call]["error"]), (call, found[call])
    assert admin("GET", "o2:secret") == "two"  # neither read, changed nor flushed
    assert admin("GET", "o1:a.example.org:probe") == "mine"


def test_verify_says_redis_is_not_wired_without_the_module(box: Box) -> None:
    verified = octopus(box, "site", "verify", "o1", A, "--yes", check=False)
    assert verified.returncode == 0, verified.stderr[-2000:]
    assert "Redis is not wired (the platform does not carry the redis module)" in \
        verified.stderr
    assert "Redis_Cache" not in box.read_file(f"{site_dir(A)}/settings.php")


# --------------------------------------------------------------------------- dev alias


def test_dev_alias_shows_php_errors_and_the_main_name_never(box: Box) -> None:
    status, _, body = http(box, DEV, "/?bprobe=warn&nocache=1")
    assert status < 500 and "BARRACUDA-PROBE-WARNING" in body, (status, body[:1500])
    status, _, body = http(box, A, "/?bprobe=warn&nocache=1")
    assert status == 200 and "BARRACUDA-PROBE-WARNING" not in body and SITE_NAME in body
    # Through Drupal's own error handler: its message on dev only.
    status, _, body = http(box, DEV, "/?bprobe=drupal&nocache=1")
    assert status < 500 and "BARRACUDA-PROBE-DRUPAL" in body, (status, body[:1500])
    status, _, body = http(box, A, "/?bprobe=drupal&nocache=1")
    assert status == 200 and "BARRACUDA-PROBE-DRUPAL" not in body


def test_dev_alias_skips_the_speed_booster(box: Box) -> None:
    main = [http(box, A, "/node?sb=main")[1].get("x-speed-cache") for _ in range(3)]
    assert main[1:] == ["HIT", "HIT"], main
    dev = [http(box, DEV, "/node?sb=dev")[1] for _ in range(3)]
    assert all(h.get("x-speed-cache") != "HIT" for h in dev), dev
    assert all(h.get("x-speed-bypass", "").startswith("dev") for h in dev), dev
