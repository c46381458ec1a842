"""A site moved between servers: `octopus site export` on box A, `octopus site import` on
box B (Debian 12, systemd), a Drupal 7.101 site of ../shared/fixtures installed by
`octopus site add --install` with a node made through Drupal's own API.

The boxes cannot reach each other (each has its own network namespace with only `lo`,
tests/box/boxes.py): the archive is carried by the host, as an operator or Ansible's own
connection would carry it. What is proved: the archive verifies on both ends, box B serves
the same node under the same name with its own database credentials, the source is
untouched, a wrong platform or a damaged archive is refused in one line with nothing
changed, a dump that does not verify undoes the whole import, and converges run twice
change nothing."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.box.boxes import Box
from tests.box.conftest import installed_box, octopus
from tests.box.fixtures import fixture_tree

SITE = "one.example.org"
TITLE = "A node that travels"
BODY = "Carried from box A to box B, every byte of it."
ARCHIVE = "/root/move/one.tar.zst"

# The node, made through Drupal 7's API as the instance's user (who can read settings.php).
MAKE_NODE = r"""
define('DRUPAL_ROOT', getcwd());
$_SERVER['HTTP_HOST'] = $argv[1];
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['REQUEST_METHOD'] = 'GET';
require_once DRUPAL_ROOT . '/includes/bootstrap.inc';
drupal_bootstrap(DRUPAL_BOOTSTRAP_FULL);
$node = new stdClass();
$node->type = 'article';
node_object_prepare($node);
$node->title = $argv[2];
$node->language = LANGUAGE_NONE;
$node->uid = 1;
$node->status = 1;
$node->body[LANGUAGE_NONE][0]['value'] = $argv[3];
$node->body[LANGUAGE_NONE][0]['format'] = 'filtered_html';
node_save($node);
print $node->nid;
"""

# What a refused or undone import must leave as it was.
DIGEST = r"""
set -e
find /data /etc/nginx /etc/php /etc/cron.d -xdev -not -path '/data/disk/*/log/*' \
  -printf '%p %m %u %g %s\n' | sort
mariadb -N -B -e 'SHOW DATABASES; SELECT user, host FROM mysql.user ORDER BY user, host'
getent passwd | sort
"""


def changed(stderr: str) -> int:
    line = [x for x in stderr.splitlines() if re.match(r"\d+ changed, ", x)][-1]
    return int(line.split()[0])


def page(box: Box, host: str, path: str) -> tuple[str, str]:
    out = box.run(["curl", "-s", "-o", "/tmp/page", "-w", "%{http_code}", "-H",
                   f"Host: {host}", f"http://127.0.0.1{path}"]).stdout
    return out, box.read_file("/tmp/page")


def digest(box: Box) -> str:
    return box.run(["bash", "-c", DIGEST]).stdout


def carry(src: Box, dest: Box, path: str) -> str:
    """Copy `path` of `src` to the same path in `dest` through the host; its sha256."""
    real = src.root / path.lstrip("/")
    dest.run(["mkdir", "-p", str(Path(path).parent)])
    dest.copy_in(real, path)
    return hashlib.sha256(real.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pair(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[tuple[Box, Box]]:
    tree = fixture_tree("pressflow-7.101")
    with installed_box(request.config) as a, installed_box(request.config) as b:
        for box in (a, b):
            box.copy_in(tree, "/root/d7")
            box.run(["sh", "-c", f"echo '127.0.0.1 {SITE}' >> /etc/hosts"])
        octopus(a, "install", "o1", "--email", f"ops@{SITE}", "--yes")
        octopus(a, "platform", "add", "o1", "d7", "--path", "/root/d7", "--yes")
        added = octopus(a, "site", "add", "o1", SITE, "--platform", "d7", "--install",
                        "--site-name", "Fleet site", "--yes", check=False)
        assert added.returncode == 0, added.stderr[-3000:]
        a.write_file("/root/node.php", "<?php\n" + MAKE_NODE)
        nid = a.run(["runuser", "-u", "o1", "--", "sh", "-c",
                     f"cd /data/disk/o1/platforms/d7 && php /root/node.php {SITE} "
                     f"'{TITLE}' '{BODY}'"]).stdout.strip()
        assert nid == "1", nid
        octopus(b, "install", "o2", "--email", f"ops@{SITE}", "--yes")
        yield a, b


def test_export_writes_a_verified_archive_and_leaves_the_site(pair: tuple[Box, Box]) -> None:
    a, _ = pair
    before = digest(a)
    code, body = page(a, SITE, "/node/1")
    assert code == "200" and TITLE in body and BODY in body
    planned = json.loads(octopus(a, "site", "export", "o1", SITE, "--to", ARCHIVE,
                                 "--dry-run", "--json").stdout)
    assert planned["pending"] == 1, planned
    assert a.run(["test", "-e", ARCHIVE], check=False).returncode == 1
    a.run(["mkdir", "-p", "/root/move"])
    made = octopus(a, "site", "export", "o1", SITE, "--to", ARCHIVE, "--yes", "--json")
    results = json.loads(made.stdout)["results"]
    assert [r["status"] for r in results] == ["changed"], results
    shown = re.search(r"exported to \S+ \((\d+) bytes, sha256 ([0-9a-f]{64})\)", made.stderr)
    assert shown, made.stderr[-2000:]
    assert a.host.file(ARCHIVE).mode == 0o600
    assert a.run(["sha256sum", ARCHIVE]).stdout.split()[0] == shown.group(2)
    members = a.run(["tar", "--zstd", "-tf", ARCHIVE]).stdout.split()
    assert {"manifest.json", "records/", f"records/{SITE}.yml",
            "db/o1_one_example_org.sql.zst", "tree/settings.php"} <= set(members), members
    again = octopus(a, "site", "export", "o1", SITE, "--to", ARCHIVE, "--yes")
    assert changed(again.stderr) == 0
    # The source is only read.
    assert digest(a) == before
    assert page(a, SITE, "/node/1") == (code, body)
    other = octopus(a, "site", "export", "o1", SITE, "--to", "/etc/hostname", "--yes",
                    check=False)
    assert other.returncode != 0 and other.stderr.count("\n") == 1, other.stderr


def test_import_refuses_a_wrong_platform_or_archive_in_one_line(pair: tuple[Box, Box]) -> None:
    a, b = pair
    sha = carry(a, b, ARCHIVE)
    assert b.run(["sha256sum", ARCHIVE]).stdout.split()[0] == sha
    before = digest(b)
    missing = octopus(b, "site", "import", "o2", ARCHIVE, "--yes", check=False)
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1, missing.stderr
    assert "instance o2 has no platform d7" in missing.stderr and "Drupal 7.101" in \
        missing.stderr
    assert digest(b) == before
    b.write_file("/root/php/index.php", "<?php echo 'plain';\n")
    octopus(b, "platform", "add", "o2", "php", "--path", "/root/php", "--yes")
    before = digest(b)
    wrong = octopus(b, "site", "import", "o2", ARCHIVE, "--platform", "php", "--yes",
                    check=False)
    assert wrong.returncode != 0 and wrong.stderr.count("\n") == 1, wrong.stderr
    assert "ran on Drupal 7.101" in wrong.stderr
    damaged = "/root/move/damaged.tar.zst"
    b.run(["sh", "-c", f"head -c 200000 {ARCHIVE} > {damaged}"])
    cut = octopus(b, "site", "import", "o2", damaged, "--yes", check=False)
    assert cut.returncode != 0 and cut.stderr.count("\n") == 1, cut.stderr
    assert digest(b) == before


def test_a_dump_that_does_not_verify_undoes_the_import(pair: tuple[Box, Box]) -> None:
    _, b = pair
    octopus(b, "platform", "add", "o2", "d7", "--path", "/root/d7", "--yes")
    before = digest(b)
    # The same archive with another sha256 recorded for the dump: found only when the
    # import, half done, verifies the dump before loading it.
    b.run(["sh", "-c", "set -e; rm -rf /root/bad; mkdir /root/bad; cd /root/bad; "
           f"tar --zstd -xf {ARCHIVE}; "
           "sed -i 's/\"sha256\": \"[0-9a-f]*\"/\"sha256\": \"" + "0" * 64 + "\"/' "
           "manifest.json; tar --zstd -cf /root/move/bad.tar.zst *"])
    failed = octopus(b, "site", "import", "o2", "/root/move/bad.tar.zst", "--yes",
                     check=False)
    assert failed.returncode != 0, failed.stderr[-2000:]
    assert "sha256 does not match" in failed.stderr, failed.stderr[-2000:]
    assert digest(b) == before


def test_imported_site_serves_the_same_node_with_its_own_credentials(
        pair: tuple[Box, Box]) -> None:
    a, b = pair
    source_record = a.read_file(f"/data/disk/o1/config/sites/{SITE}.yml")
    planned = json.loads(octopus(b, "site", "import", "o2", ARCHIVE, "--dry-run",
                                 "--json").stdout)
    assert planned["pending"] > 0
    assert b.run(["test", "-e", f"/data/disk/o2/platforms/d7/sites/{SITE}"],
                 check=False).returncode == 1
    done = octopus(b, "site", "import", "o2", ARCHIVE, "--yes", check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    code, body = page(b, SITE, "/node/1")
    assert code == "200" and TITLE in body and BODY in body, body[-2000:]
    assert page(a, SITE, "/node/1")[0] == "200"
    import yaml
    old = yaml.safe_load(source_record)
    new = yaml.safe_load(b.read_file(f"/data/disk/o2/config/sites/{SITE}.yml"))
    assert new["db_name"] == "o2_one_example_org" and new["db_user"].startswith("o2_")
    assert new["db_password"] != old["db_password"] and new["hash_salt"] == old["hash_salt"]
    settings = b.read_file(f"/data/disk/o2/platforms/d7/sites/{SITE}/settings.php")
    assert "/data/disk/o2/secrets/" in settings and old["db_password"] not in settings
    assert b.host.file(f"/data/disk/o2/platforms/d7/sites/{SITE}/files").user == "o2.web"
    # The source is untouched; the new server's converge changes nothing more.
    assert a.read_file(f"/data/disk/o1/config/sites/{SITE}.yml") == source_record
    assert changed(octopus(b, "up-stable", "o2", "--yes").stderr) == 0
    # Under another name on the same server, beside the first.
    renamed = octopus(b, "site", "import", "o2", ARCHIVE, "--domain", "copy.example.org",
                      "--yes", check=False)
    assert renamed.returncode == 0, renamed.stderr[-3000:]
    code, body = page(b, "copy.example.org", "/node/1")
    assert code == "200" and TITLE in body

