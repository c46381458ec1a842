"""Site clone, migrate, rename and the safe upgrade, end to end on real Drupal codebases of
../shared/fixtures.

Debian 12 (systemd-bookworm): a Drupal 7 site installed on Pressflow 7.95 with content (three
nodes, an image uploaded into the first one's image field and another pasted into its body,
a user). It is cloned to test.DOMAIN: both serve the same nodes, the clone's image URLs
point at its own files, its database account is another one and cannot read the source's.
A migrate to a platform whose update hook throws leaves the site on 7.95 with its old
database, serving the same pages, and `site upgrade` to that platform never touches it. Then
`site upgrade` to 7.101: the test clone migrates and passes its checks, the live site moves
while a request loop sees only 200s and one run of Drupal's maintenance 503s, the two 7.101
updates are in `system`, and the status report shows no pending update.
Debian 13 (systemd-trixie): a Drupal 11.2.8 site cloned, then the clone renamed."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import yaml

from tests.box.boxes import Box
from tests.box.conftest import installed_box, octopus
from tests.box.fixtures import fixture_tree
from tests.box.test_drupal import curl, sql

LIVE = "live.example.org"
CLONE = f"test.{LIVE}"
TRIAL = f"upgrade-test.{LIVE}"
SITE_NAME = "Lifecycle site"
P795 = "/data/disk/o1/platforms/d795"
LIVE_DB = "o1_live_example_org"

# Content through Drupal 7's own API, run as the instance's user.
CONTENT = r"""<?php
$_SERVER['HTTP_HOST'] = 'live.example.org';
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
$_SERVER['REQUEST_METHOD'] = 'GET';
$_SERVER['SCRIPT_NAME'] = '/index.php';
define('DRUPAL_ROOT', '/data/disk/o1/platforms/d795');
chdir(DRUPAL_ROOT);
require_once DRUPAL_ROOT . '/includes/bootstrap.inc';
drupal_bootstrap(DRUPAL_BOOTSTRAP_FULL);
$editor = user_save(drupal_anonymous_user(), array('name' => 'editor',
  'mail' => 'editor@example.org', 'pass' => 'Editor-pass-1234', 'status' => 1));
$image = imagecreatetruecolor(64, 48);
imagefill($image, 0, 0, imagecolorallocate($image, 200, 40, 40));
ob_start();
imagepng($image);
$png = ob_get_clean();
$photo = file_save_data($png, 'public://photo.png');
file_save_data($png, 'public://inline.png');
for ($i = 1; $i <= 3; $i++) {
  $node = new stdClass();
  $node->type = 'article';
  node_object_prepare($node);
  $node->title = "Lifecycle node $i";
  $node->language = LANGUAGE_NONE;
  $node->uid = $editor->uid;
  $node->status = 1;
  $node->body[LANGUAGE_NONE][0] = array('format' => 'full_html',
    'value' => "<p>Body of node $i <img src=\"/sites/live.example.org/files/inline.png\"></p>");
  if ($i == 1) {
    $node->field_image[LANGUAGE_NONE][0] = (array) $photo + array('alt' => 'photo');
  }
  node_save($node);
}
echo "made\n";
"""

# An update hook that throws, added to a copy of the 7.101 platform.
FAILING_UPDATE = """
/**
 * Fails on purpose (written by tests/box/test_lifecycle.py).
 */
function node_update_7999() {
  throw new Exception('forced failure of update 7999');
}
"""

# What a failed migrate must leave as it was in the site's database.
TABLES = "node node_revision users file_managed field_data_body field_data_field_image system"


def page(box: Box, host: str, path: str = "/node/1") -> tuple[int, str]:
    status, _, body = curl(box, host, f"{path}?nocache=1")
    return status, body


def record(box: Box, domain: str) -> dict[str, object]:
    data = yaml.safe_load(box.read_file(f"/data/disk/o1/config/sites/{domain}.yml"))
    assert isinstance(data, dict)
    return data


def schema(box: Box, db: str = LIVE_DB) -> int:
    return int(sql(box, f"SELECT schema_version FROM {db}.system WHERE name = 'system'"))


def fingerprint(box: Box) -> dict[str, str]:
    """The live site as a visitor and the operator see it."""
    checksums = sql(box, f"CHECKSUM TABLE {', '.join(f'{LIVE_DB}.{t}' for t in TABLES.split())}")
    return {
        "record": box.read_file(f"/data/disk/o1/config/sites/{LIVE}.yml"),
        "vhost_root": re.findall(r"^\s*root (\S+);", box.read_file(
            f"/data/disk/o1/config/server_master/nginx/vhost.d/{LIVE}.conf"), re.M)[0],
        "tables": checksums,
        "sessions": sql(box, f"SHOW CREATE TABLE {LIVE_DB}.sessions"),
        "schema": str(schema(box)),
        # Less the tokens made per request (an anonymous visitor's session id is random).
        "node": re.sub(r'name="form_build_id" value="[^"]+"|"theme_token":"[^"]+"', "",
                       page(box, LIVE)[1]),
        "dirs": box.run("ls -d /data/disk/o1/platforms/*/sites/*.example.org").stdout,
    }


def changed(before: dict[str, str], after: dict[str, str]) -> str:
    """What differs, as unified diffs."""
    import difflib
    return "\n".join("\n".join(difflib.unified_diff(
        before[key].splitlines(), after[key].splitlines(), key, key, lineterm="", n=1))
        for key in before if before[key] != after[key])


@pytest.fixture(scope="module")
def d7box(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[Box]:
    with installed_box(request.config) as box:
        box.copy_in(fixture_tree("pressflow-7.95"), "/root/d795")
        box.copy_in(fixture_tree("pressflow-7.101"), "/root/d7101")
        box.run("cp -a /root/d7101 /root/d7bad && cat >> /root/d7bad/modules/node/node.install",
                input=FAILING_UPDATE)
        box.run(["sh", "-c", f"echo '127.0.0.1 {LIVE} {CLONE} {TRIAL}' >> /etc/hosts"])
        octopus(box, "install", "o1", "--email", f"ops@{LIVE}", "--yes")
        for name in ("d795", "d7101", "d7bad"):
            octopus(box, "platform", "add", "o1", name, "--path", f"/root/{name}", "--yes")
        added = octopus(box, "site", "add", "o1", LIVE, "--platform", "d795", "--install",
                        "--site-name", SITE_NAME, "--yes", check=False)
        assert added.returncode == 0, added.stderr[-3000:]
        box.write_file("/data/disk/o1/tmp/content.php", CONTENT, 0o644)
        made = box.run(["runuser", "-u", "o1", "--", "php", "/data/disk/o1/tmp/content.php"])
        assert made.stdout.strip().endswith("made"), made.stdout + made.stderr
        yield box


def test_clone_serves_the_same_content_from_its_own_files(d7box: Box) -> None:
    cloned = octopus(d7box, "site", "clone", "o1", LIVE, CLONE, "--yes", check=False)
    assert cloned.returncode == 0, cloned.stderr[-3000:]
    assert re.search(rf"sites/{re.escape(LIVE)}/ rewritten to sites/{re.escape(CLONE)}/ in "
                     r"field_data_body\.body_value \(3\), field_revision_body\.body_value \(3\)",
                     cloned.stderr), cloned.stderr[-2000:]
    for n in (1, 2, 3):
        for host in (LIVE, CLONE):
            status, body = page(d7box, host, f"/node/{n}")
            assert status == 200 and f"Lifecycle node {n}" in body and f"Body of node {n}" \
                in body, (host, n, status)
    _, live = page(d7box, LIVE)
    _, clone = page(d7box, CLONE)
    assert f"/sites/{LIVE}/files/styles/large/public/photo.png" in live
    assert f"/sites/{LIVE}/files/inline.png" in live
    assert f"sites/{LIVE}/" not in clone, "the clone still points at the source's files"
    assert f'src="/sites/{CLONE}/files/inline.png"' in clone
    styled = re.search(rf"https?://{re.escape(CLONE)}(/sites/{re.escape(CLONE)}/files/styles/"
                       r"large/public/photo\.png\?itok=[\w-]+)", clone)
    assert styled, clone[:3000]
    status, headers, _ = curl(d7box, CLONE, styled.group(1))
    assert status == 200 and headers.get("content-type") == "image/png", (status, headers)
    assert curl(d7box, CLONE, f"/sites/{CLONE}/files/inline.png")[0] == 200
    # Its own database, account and password; the clone's account cannot read the source's.
    live_record, clone_record = record(d7box, LIVE), record(d7box, CLONE)
    for key in ("db_name", "db_user", "db_password", "hash_salt"):
        assert live_record[key] != clone_record[key], key
    assert clone_record["aliases"] == [] and clone_record["platform"] == "d795"
    login = ["mariadb", "--no-defaults", "-u", str(clone_record["db_user"])]
    env = {"MYSQL_PWD": str(clone_record["db_password"])}
    assert d7box.run([*login, str(clone_record["db_name"]), "-N", "-e",
                      "SELECT COUNT(*) FROM node"], env=env).stdout.strip() == "3"
    denied = d7box.run([*login, LIVE_DB, "-e", "SELECT 1"], env=env, check=False)
    assert denied.returncode != 0 and "denied" in denied.stderr
    assert sql(d7box, f"SELECT COUNT(*) FROM {clone_record['db_name']}.users WHERE "
                      "name = 'editor'") == "1"
    cron = d7box.read_file("/etc/cron.d/barracuda-octopus-o1")
    assert f"octopus site cron o1 {CLONE}" in cron and f"octopus site cron o1 {LIVE}" in cron
    # One-shot: the same clone again is refused, changing nothing.
    again = octopus(d7box, "site", "clone", "o1", LIVE, CLONE, "--yes", check=False)
    assert again.returncode != 0 and f"duplicate domain {CLONE}" in again.stderr


def test_a_failed_update_leaves_the_site_on_its_old_platform(d7box: Box) -> None:
    before = fingerprint(d7box)
    assert before["schema"] == "7085", before["schema"]
    failed = octopus(d7box, "site", "migrate", "o1", LIVE, "--platform", "d7bad", "--yes",
                     check=False)
    assert failed.returncode != 0
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "node_update_7999 failed" in errors[0] and \
        "forced failure of update 7999" in errors[0] and "Rolled back" in errors[0], \
        failed.stderr[-3000:]
    after = fingerprint(d7box)
    assert after == before, changed(before, after)
    assert sql(d7box, f"SELECT value FROM {LIVE_DB}.variable WHERE name = "
                      "'maintenance_mode'") in ("", "i:0;")
    # The safe upgrade to that platform stops at the test clone.
    stopped = octopus(d7box, "site", "upgrade", "o1", LIVE, "--platform", "d7bad", "--yes",
                      check=False)
    assert stopped.returncode != 0
    assert "stopped: step 3" in stopped.stderr and "forced failure of update 7999" in \
        stopped.stderr and "the live site was not touched" in stopped.stderr, \
        stopped.stderr[-3000:]
    assert "== step 6" not in stopped.stderr and "== step 5" in stopped.stderr
    after = fingerprint(d7box)
    assert after == before, changed(before, after)
    assert d7box.run(["test", "-e", f"/data/disk/o1/config/sites/{TRIAL}.yml"],
                     check=False).returncode != 0, "the failed test clone was not removed"


def test_upgrade_moves_the_site_to_the_new_code(d7box: Box) -> None:
    d7box.run("rm -f /tmp/stop /tmp/codes; setsid sh -c 'while [ ! -e /tmp/stop ]; do "
              f"curl -s -o /dev/null -w \"%{{http_code}}\\n\" -H \"Host: {LIVE}\" "
              "\"http://127.0.0.1/node/1?nocache=1\" >> /tmp/codes; sleep 0.05; done' "
              ">/dev/null 2>&1 < /dev/null &")
    upgraded = octopus(d7box, "site", "upgrade", "o1", LIVE, "--platform", "d7101",
                       "--check-path", "/node/1", "--check-path", "/user/login", "--yes",
                       check=False)
    d7box.run("touch /tmp/stop; sleep 1")
    assert upgraded.returncode == 0, upgraded.stderr[-4000:]
    assert "system_update_7086, system_update_7087" in upgraded.stderr, upgraded.stderr[-4000:]
    codes = d7box.read_file("/tmp/codes").split()
    assert len(codes) > 20 and set(codes) <= {"200", "503"}, sorted(set(codes))
    # One maintenance window at most: the 503s are one run.
    assert re.fullmatch(r"(200 )+(503 )*(200 ?)+", " ".join(codes) + " "), " ".join(codes)
    assert schema(d7box) == 7087
    assert record(d7box, LIVE)["platform"] == "d7101"
    status, body = page(d7box, LIVE)
    assert status == 200 and "Lifecycle node 1" in body and \
        f"/sites/{LIVE}/files/styles/large/public/photo.png" in body
    assert d7box.run(["test", "-e", f"{P795}/sites/{LIVE}"], check=False).returncode != 0
    assert d7box.run(["test", "-e", f"/data/disk/o1/config/sites/{TRIAL}.yml"],
                     check=False).returncode != 0
    # The status report as the admin: no pending update.
    link = octopus(d7box, "site", "login", "o1", LIVE).stdout.strip()
    path = re.sub(rf"^https://{re.escape(LIVE)}", "", link)
    assert curl(d7box, LIVE, path, "-c", "/root/jar")[0] == 302
    status, _, report = curl(d7box, LIVE, "/admin/reports/status", "-b", "/root/jar")
    assert status == 200 and re.search(r"Database updates\s*</td>\s*<td[^>]*>\s*Up to date",
                                       report), report[:4000]
    assert "Drupal 7.101" in report or "7.101" in report
    # The same move again changes nothing.
    again = octopus(d7box, "site", "migrate", "o1", LIVE, "--platform", "d7101", "--yes",
                    check=False)
    assert again.returncode == 0 and "0 changed" in again.stderr, again.stderr[-2000:]


# --------------------------------------------------------------------------- Drupal 11

D11 = "d11.example.org"
D11_CLONE = f"test.{D11}"
D11_RENAMED = f"renamed.{D11}"


@pytest.fixture(scope="module")
def d11box(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[Box]:
    with installed_box(request.config, release="trixie") as box:
        box.copy_in(fixture_tree("drupal-11.2.8"), "/root/d11")
        octopus(box, "install", "o1", "--email", f"ops@{D11}", "--yes")
        octopus(box, "platform", "add", "o1", "d11", "--path", "/root/d11", "--yes")
        added = octopus(box, "site", "add", "o1", D11, "--platform", "d11", "--install",
                        "--site-name", SITE_NAME, "--yes", check=False)
        assert added.returncode == 0, added.stderr[-3000:]
        yield box


def drush_status(box: Box, domain: str) -> str:
    out = box.run(["runuser", "-u", "o1", "--", "/data/disk/o1/platforms/d11/vendor/bin/drush",
                   "--root=/data/disk/o1/platforms/d11/web", f"--uri=https://{domain}",
                   "status", "--field=bootstrap"]).stdout
    return out.strip()


def test_drupal11_clone_and_rename(d11box: Box) -> None:
    cloned = octopus(d11box, "site", "clone", "o1", D11, D11_CLONE, "--yes", check=False)
    assert cloned.returncode == 0, cloned.stderr[-3000:]
    for host in (D11, D11_CLONE):
        status, body = page(d11box, host, "/")
        assert status == 200 and SITE_NAME in body, host
    source, clone = record(d11box, D11), record(d11box, D11_CLONE)
    assert source["db_password"] != clone["db_password"] and source["db_user"] != \
        clone["db_user"]
    assert drush_status(d11box, D11_CLONE) == "Successful"
    renamed = octopus(d11box, "site", "rename", "o1", D11_CLONE, D11_RENAMED, "--yes",
                      check=False)
    assert renamed.returncode == 0, renamed.stderr[-3000:]
    status, body = page(d11box, D11_RENAMED, "/")
    assert status == 200 and SITE_NAME in body
    _, headers, _ = curl(d11box, D11_CLONE, "/")
    assert headers.get("x-barracuda-server") == "default", headers
    assert drush_status(d11box, D11_RENAMED) == "Successful"
    site = "/data/disk/o1/platforms/d11/web/sites"
    assert d11box.run(["test", "-e", f"{site}/{D11_CLONE}"], check=False).returncode != 0
    assert d11box.run(["test", "-e", f"/data/disk/o1/secrets/{D11_CLONE}.php"],
                      check=False).returncode != 0
    assert record(d11box, D11_RENAMED)["db_name"] == clone["db_name"]
    assert page(d11box, D11, "/")[0] == 200  # the source never stopped
    again = octopus(d11box, "site", "rename", "o1", D11_CLONE, D11_RENAMED, "--yes",
                    check=False)
    assert again.returncode == 0 and "0 changed" in again.stderr, again.stderr[-2000:]
