"""Many servers, end to end (Debian 12, systemd): the boa.hosting Ansible collection driving
two fresh boxes over SSH, and a Drupal 7.101 site (../shared/fixtures) moved between them.

Reaching the boxes: each box has its own network namespace with only `lo` (tests/box/
boxes.py), so two boxes cannot reach each other, and the host cannot reach them over IP.
Each box runs a real sshd on its loopback; the controller is the host, with ansible-core
from PyPI in a venv of its own, and its SSH connection enters a box's network namespace
through a ProxyCommand (`nsenter -t LEADER -n socat STDIO TCP:127.0.0.1:22`): Ansible's
own ssh connection, with nothing of community.general. Files between the boxes travel
through the controller (fetch, copy), as they do between real servers.

What is proved:
* the README's example (ansible/examples: two servers, an instance on each, a platform and a
  site) converges two fresh boxes, from install.sh up, to a serving Drupal site each; the
  second run reports changed=0 on every host; `--check --diff` with a changed inventory
  shows the tool's planned diffs and changes nothing; a module given a bad argument fails
  with the tool's own one-line error;
* `octopus site export` / `octopus site import`: the archive verifies on both ends, box B
  serves the same node with credentials of its own, the source is untouched; a wrong
  platform or a damaged archive is refused in one line with nothing changed; a dump that
  does not verify undoes the whole import;
* the move_site playbook carries a site from box A to box B, checks it, and removes the
  source only when asked."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.box import rootfs
from tests.box.boxes import Box, start_box
from tests.box.conftest import REPO, finish_box, octopus
from tests.box.fixtures import fixture_tree

ANSIBLE_CORE = "ansible-core>=2.16,<2.20"
EXAMPLES = REPO / "ansible" / "examples"
COLLECTION = REPO / "ansible" / "ansible_collections" / "boa" / "hosting"
WEB1, WEB2 = "web1.example.org", "web2.example.org"
SITE1, SITE2 = "www.example.org", "shop.example.org"
TITLE = "A node that travels"
BODY = "Carried from box A to box B, every byte of it."
ARCHIVE = "/root/move/www.tar.zst"
DOMAINS = f"{SITE1} {SITE2} copy.example.org moved.example.org"

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

# What a refused, checked or undone run must leave as it was.
DIGEST = r"""
set -e
find /data /etc/nginx /etc/php /etc/cron.d /root/.barracuda.cnf -xdev \
  -not -path '/data/disk/*/log/*' -printf '%p %m %u %g %s\n' | sort
mariadb -N -B -e 'SHOW DATABASES; SELECT user, host FROM mysql.user ORDER BY user, host'
getent passwd | sort
"""


@dataclass
class Fleet:
    """Two boxes (web1 = A, web2 = B) and the controller that drives them."""

    a: Box
    b: Box
    work: Path
    env: dict[str, str]

    def ansible(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.work / "venv" / "bin" / tool), *args], cwd=self.work,
                              env=self.env, capture_output=True, text=True, timeout=3600)

    def playbook(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.ansible("ansible-playbook", "-i", str(EXAMPLES / "inventory.yml"), "-i",
                            str(self.work / "boxes.yml"), *args)

    def site_yml(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.playbook(str(EXAMPLES / "site.yml"), "-e", f"barracuda_source={REPO}",
                             "-e", "platform_path=/root/d7", *args)


def recap(out: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP: host -> {ok, changed, unreachable, failed}."""
    rows = re.findall(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+"
                      r"failed=(\d+)", out, re.M)
    return {host: {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable),
                   "failed": int(failed)} for host, ok, changed, unreachable, failed in rows}


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


def ready_for_ansible(box: Box, public_key: str) -> None:
    """What any server Ansible manages has: Python and sshd taking the controller's key."""
    box.run(["apt-get", "update", "-q"])
    box.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "python3",
             "openssh-server"], env={"DEBIAN_FRONTEND": "noninteractive"})
    box.write_file("/root/.ssh/authorized_keys", public_key, 0o600)
    box.run(["chmod", "700", "/root/.ssh"])
    box.run(["systemctl", "restart", "ssh"])


@pytest.fixture(scope="module")
def fleet(box_prereqs: None, request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    work = tmp_path_factory.mktemp("fleet")
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    subprocess.run([str(work / "venv" / "bin" / "pip"), "install", "-q",
                    "--disable-pip-version-check", ANSIBLE_CORE], check=True, timeout=900)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "key")],
                   check=True)
    env = {"PATH": f"{work / 'venv' / 'bin'}:{rootfs.HOST_PATH}", "HOME": str(work),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_RETRY_FILES_ENABLED": "False",
           "ANSIBLE_COLLECTIONS_PATH": str(work / "collections"),
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp"), "ANSIBLE_FORKS": "2",
           "ANSIBLE_PIPELINING": "True"}
    boxes: list[Box] = []
    try:
        for _ in range(2):
            boxes.append(start_box("systemd", "bookworm"))
        tree = fixture_tree("pressflow-7.101")
        hosts = {}
        for name, box in zip((WEB1, WEB2), boxes, strict=True):
            ready_for_ansible(box, (work / "key.pub").read_text())
            box.copy_in(tree, "/root/d7")
            box.run(["sh", "-c", f"echo '127.0.0.1 {DOMAINS}' >> /etc/hosts"])
            proxy = f"nsenter -t {box.leader} -n socat STDIO TCP:127.0.0.1:22"
            hosts[name] = {
                "ansible_user": "root", "ansible_python_interpreter": "/usr/bin/python3",
                "ansible_ssh_private_key_file": str(work / "key"),
                "ansible_ssh_common_args": f"-o 'ProxyCommand={proxy}' "
                                           "-o UserKnownHostsFile=/dev/null"}
        (work / "boxes.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
        fleet = Fleet(boxes[0], boxes[1], work, env)
        installed = fleet.ansible("ansible-galaxy", "collection", "install", str(COLLECTION),
                                  "-p", str(work / "collections"))
        assert installed.returncode == 0, installed.stdout + installed.stderr
        yield fleet
    finally:
        for box in boxes:
            finish_box(box, request.config)


# --------------------------------------------------------------------------- Ansible


def test_example_playbook_converges_two_fresh_boxes_then_changes_nothing(
        fleet: Fleet) -> None:
    first = fleet.site_yml()
    assert first.returncode == 0, first.stdout[-6000:]
    rows = recap(first.stdout)
    assert set(rows) == {WEB1, WEB2} and all(r["changed"] > 0 for r in rows.values()), rows
    for box, site in ((fleet.a, SITE1), (fleet.b, SITE2)):
        code, body = page(box, site, "/")
        assert code == "200" and site in body, body[-2000:]
    second = fleet.site_yml()
    assert second.returncode == 0, second.stdout[-6000:]
    rows = recap(second.stdout)
    assert all(r["changed"] == 0 and r["failed"] == 0 for r in rows.values()), \
        second.stdout[-6000:]


def test_check_diff_shows_the_planned_changes_and_changes_nothing(fleet: Fleet) -> None:
    before = (digest(fleet.a), digest(fleet.b))
    checked = fleet.site_yml("--check", "--diff", "-e", "site_hsts=true")
    assert checked.returncode == 0, checked.stdout[-6000:]
    rows = recap(checked.stdout)
    assert all(r["changed"] == 1 for r in rows.values()), checked.stdout[-6000:]
    # The vhost and the site record hold secrets: the tool names them and hides their
    # content, and so does the module.
    for site in (SITE1, SITE2):
        assert re.search(rf"vhost\.d/{re.escape(site)}\.conf: update: .*\n\(secret content "
                         r"not shown\)", checked.stdout), checked.stdout[-6000:]
        assert f"config/sites/{site}.yml: update" in checked.stdout
    assert (digest(fleet.a), digest(fleet.b)) == before


def test_a_bad_argument_fails_with_the_tools_one_line_error(fleet: Fleet) -> None:
    before = digest(fleet.a)
    direct = octopus(fleet.a, "site", "set", "o1", SITE1, "--cache-ttl", "999999", "--yes",
                     check=False)
    assert direct.returncode != 0 and direct.stderr.startswith("error: ")
    line = direct.stderr.strip()[len("error: "):]
    failed = fleet.ansible("ansible", "-i", str(EXAMPLES / "inventory.yml"), "-i",
                           str(fleet.work / "boxes.yml"), WEB1, "-o", "-m",
                           "boa.hosting.site", "-a",
                           f"instance=o1 domain={SITE1} platform=d7 cache_ttl=999999")
    assert failed.returncode != 0
    answer = json.loads(failed.stdout.split("=>", 1)[1])
    assert answer["msg"] == line, (answer, line)
    assert digest(fleet.a) == before


# --------------------------------------------------------------------------- export, import


def test_export_writes_a_verified_archive_and_leaves_the_site(fleet: Fleet) -> None:
    a = fleet.a
    a.write_file("/tmp/node.php", "<?php\n" + MAKE_NODE)
    nid = a.run(["runuser", "-u", "o1", "--", "sh", "-c",
                 f"cd /data/disk/o1/platforms/d7 && php /tmp/node.php {SITE1} '{TITLE}' "
                 f"'{BODY}'"]).stdout.strip()
    assert nid == "1", nid
    code, body = page(a, SITE1, "/node/1")
    assert code == "200" and TITLE in body and BODY in body
    a.run(["mkdir", "-p", "/root/move"])
    before = digest(a)
    planned = json.loads(octopus(a, "site", "export", "o1", SITE1, "--to", ARCHIVE,
                                 "--dry-run", "--json").stdout)
    assert planned["pending"] == 1, planned
    assert a.run(["test", "-e", ARCHIVE], check=False).returncode == 1
    made = octopus(a, "site", "export", "o1", SITE1, "--to", ARCHIVE, "--yes", "--json")
    results = json.loads(made.stdout)["results"]
    assert [r["status"] for r in results] == ["changed"], results
    shown = re.search(r"exported to \S+ \((\d+) bytes, sha256 ([0-9a-f]{64})\)", made.stderr)
    assert shown, made.stderr[-2000:]
    assert a.host.file(ARCHIVE).mode == 0o600
    assert a.run(["sha256sum", ARCHIVE]).stdout.split()[0] == shown.group(2)
    members = a.run(["tar", "--zstd", "-tf", ARCHIVE]).stdout.split()
    assert {"manifest.json", "records/", f"records/{SITE1}.yml",
            "db/o1_www_example_org.sql.zst", "tree/settings.php"} <= set(members), members
    again = octopus(a, "site", "export", "o1", SITE1, "--to", ARCHIVE, "--yes")
    assert changed(again.stderr) == 0
    # The source is only read.
    assert digest(a) == before
    assert page(a, SITE1, "/node/1") == (code, body)
    other = octopus(a, "site", "export", "o1", SITE1, "--to", "/etc/hostname", "--yes",
                    check=False)
    assert other.returncode != 0 and other.stderr.count("\n") == 1, other.stderr


def test_import_refuses_a_wrong_platform_or_archive_in_one_line(fleet: Fleet) -> None:
    a, b = fleet.a, fleet.b
    octopus(b, "install", "o2", "--yes")
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
    b.run(["sh", "-c", f"head -c $(($(stat -c %s {ARCHIVE}) / 2)) {ARCHIVE} > {damaged}"])
    cut = octopus(b, "site", "import", "o2", damaged, "--yes", check=False)
    assert cut.returncode != 0 and cut.stderr.count("\n") == 1, cut.stderr
    assert "damaged.tar.zst" in cut.stderr and "cut short" in cut.stderr, cut.stderr
    assert digest(b) == before


def test_a_dump_that_does_not_verify_undoes_the_import(fleet: Fleet) -> None:
    b = fleet.b
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
    assert "is damaged" not in failed.stderr
    assert digest(b) == before


def test_imported_site_serves_the_same_node_with_its_own_credentials(
        fleet: Fleet) -> None:
    a, b = fleet.a, fleet.b
    source_record = a.read_file(f"/data/disk/o1/config/sites/{SITE1}.yml")
    planned = json.loads(octopus(b, "site", "import", "o2", ARCHIVE, "--dry-run",
                                 "--json").stdout)
    assert planned["pending"] > 0
    assert b.run(["test", "-e", f"/data/disk/o2/platforms/d7/sites/{SITE1}"],
                 check=False).returncode == 1
    done = octopus(b, "site", "import", "o2", ARCHIVE, "--yes", check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    code, body = page(b, SITE1, "/node/1")
    assert code == "200" and TITLE in body and BODY in body, body[-2000:]
    assert page(a, SITE1, "/node/1")[0] == "200"
    old = yaml.safe_load(source_record)
    new = yaml.safe_load(b.read_file(f"/data/disk/o2/config/sites/{SITE1}.yml"))
    assert new["db_name"] == "o2_www_example_org" and new["db_user"].startswith("o2_")
    assert new["db_password"] != old["db_password"] and new["hash_salt"] == old["hash_salt"]
    settings = b.read_file(f"/data/disk/o2/platforms/d7/sites/{SITE1}/settings.php")
    assert "/data/disk/o2/secrets/" in settings and old["db_password"] not in settings
    assert b.host.file(f"/data/disk/o2/platforms/d7/sites/{SITE1}/files").user == "o2.web"
    # The source is untouched; the new server's converge changes nothing more.
    assert a.read_file(f"/data/disk/o1/config/sites/{SITE1}.yml") == source_record
    assert changed(octopus(b, "up-stable", "o2", "--yes").stderr) == 0
    # Under another name on the same server, beside the first.
    renamed = octopus(b, "site", "import", "o2", ARCHIVE, "--domain", "copy.example.org",
                      "--yes", check=False)
    assert renamed.returncode == 0, renamed.stderr[-3000:]
    code, body = page(b, "copy.example.org", "/node/1")
    assert code == "200" and TITLE in body



# --------------------------------------------------------------------------- move_site


def test_move_site_playbook_moves_and_removes_the_source_only_when_asked(
        fleet: Fleet) -> None:
    a, b = fleet.a, fleet.b
    move = ["boa.hosting.move_site", "-e", f"move_from={WEB1}", "-e", f"move_to={WEB2}",
            "-e", f"move_domain={SITE1}", "-e", "move_from_instance=o1", "-e",
            "move_to_instance=o1", "-e", "move_new_domain=moved.example.org", "-e",
            "move_check_path=/node/1"]
    before = digest(a)
    kept = fleet.playbook(*move)
    assert kept.returncode == 0, kept.stdout[-6000:]
    code, body = page(b, "moved.example.org", "/node/1")
    assert code == "200" and TITLE in body and BODY in body, body[-2000:]
    assert digest(a) == before and page(a, SITE1, "/node/1")[0] == "200"
    for box in (a, b):
        assert box.run(["test", "-e", f"/root/boa-move/{SITE1}.tar.zst"],
                       check=False).returncode == 1
    removed = fleet.playbook(*move, "-e", "move_remove=true")
    assert removed.returncode == 0, removed.stdout[-6000:]
    sites = json.loads(octopus(a, "site", "list", "o1", "--json").stdout)["sites"]
    assert SITE1 not in [s["domain"] for s in sites]
    assert page(b, "moved.example.org", "/node/1")[0] == "200"
