"""`octopus site disable|enable` through the CLI in a --root tree (record, vhost, cron file,
dry run, JSON, the second run, errors), and each site's own PHP boundary in its vhost (the
open_basedir sent to the instance's shared pool)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from installer.config import default_text
from installer.config.cnf import parse_text
from installer.config.schema import validate
from installer.drupal.detect import DRUPAL, DRUPAL7, Platform
from installer.drupal.settings import RedisCredentials
from installer.octopus.components import InstanceState, build_instance
from installer.octopus.model import Instance, PlatformRecord, SiteRecord
from installer.octopus.sites.verify import SiteHealth, health_component
from installer.resources.files import File
from tests.cli.test_cli import run
from tests.unit.test_octopus import two_php_stack

A, B = "a.example.org", "b.example.org"
D7 = "/data/disk/o1/platforms/d7"
VHOST = "data/disk/o1/config/server_master/nginx/vhost.d/{}.conf"
RECORD = "data/disk/o1/config/sites/{}.yml"
CRON = "etc/cron.d/barracuda-octopus-o1"
D7_TREE = {
    "includes/bootstrap.inc": "<?php\ndefine('VERSION', '7.101');\n",
    "index.php": "<?php\n", "cron.php": "<?php\n", "modules/node/node.module": "<?php\n",
    "profiles/standard/standard.info": "name = Standard\ncore = 7.x\n",
    "sites/all/modules/README.txt": "contrib\n",
}


def octopus(root: Path, *args: str) -> tuple[int, str, str]:
    result = run("octopus", *args, "--root", str(root))
    return result.returncode, result.stdout, result.stderr


def contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "var/log" not in str(p) and "var/backups" not in str(p)
            and "/log/" not in str(p)}


def basedir(vhost: str) -> list[str]:
    pattern = r'fastcgi_param PHP_ADMIN_VALUE "open_basedir=([^"]+)";'
    found: set[str] = set(re.findall(pattern, vhost))
    assert len(found) == 1, found  # every PHP location sends the same one
    return found.pop().split(":")


@pytest.fixture(scope="module")
def d7root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Instance o1 with a Drupal 7 platform and two installed sites on it, A with a dev
    alias (installs are planned only under --root; the records say installed)."""
    root = tmp_path_factory.mktemp("state")
    source = root.parent / f"{root.name}-d7"
    for path, text in D7_TREE.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text(text)
    assert run("barracuda", "install", "--root", str(root), "--yes").returncode == 0
    for args in (["install", "o1", "--email", "ops@example.org"],
                 ["platform", "add", "o1", "d7", "--path", str(source)],
                 ["site", "add", "o1", A, "--platform", "d7", "--alias", f"dev.{A}",
                  "--install"],
                 ["site", "add", "o1", B, "--platform", "d7", "--install"]):
        code, _, err = octopus(root, *args, "--yes")
        assert code == 0, err
    return root


def test_a_drupal7_site_gets_its_platform_and_its_own_credentials_only(d7root: Path) -> None:
    # The whole platform: Drupal 7 makes its files' directories by testing each parent from
    # sites/ down, which a boundary without sites/ itself refuses (image styles broke).
    paths = basedir((d7root / VHOST.format(A)).read_text())
    assert paths[:3] == [f"{D7}/", f"/data/disk/o1/secrets/{A}.php", "/data/disk/o1/tmp/"]
    assert "/data/disk/o1/secrets/" not in paths
    theirs = basedir((d7root / VHOST.format(B)).read_text())
    assert f"/data/disk/o1/secrets/{B}.php" in theirs
    assert f"/data/disk/o1/secrets/{A}.php" not in theirs


def test_a_drupal8_site_gets_its_platform_and_its_own_credentials() -> None:
    top = "/data/disk/o1/platforms/d11"
    platform = Platform(root=Path(top), core=DRUPAL, version="11.2.8", major=11,
                        docroot=Path(f"{top}/web"))
    sites = [SiteRecord(name, "d11", f"o1_{name[0]}", f"o1_{name[0]}", "pw", docroot="web",
                        hash_salt="s" * 43, installed=True) for name in (A, B)]
    text = default_text("octopus", {"_PHP_FPM_VERSION": "8.2"})
    state = InstanceState(
        instance=Instance("o1"), instances=1, db_password="pw", sites=sites,
        config=validate(parse_text(text, "/root/.o1.octopus.cnf"), profile="octopus"),
        platforms=[PlatformRecord("d11", "/src", kind="drupal")], codebases={"d11": platform})
    nginx = next(c for c in build_instance(state, two_php_stack(), []) if c.name == "o1-nginx")
    vhost = next(r for r in nginx.resources if isinstance(r, File) and r.path.endswith(
        f"/{A}.conf"))
    paths = basedir(vhost.wanted.decode())
    # Drupal 8 and later list the docroot itself (extension discovery): the whole platform.
    assert paths[:2] == [f"{top}/", f"/data/disk/o1/secrets/{A}.php"]
    assert f"/data/disk/o1/secrets/{B}.php" not in paths


def test_disable_then_enable(d7root: Path) -> None:
    vhost, record = d7root / VHOST.format(A), d7root / RECORD.format(A)
    served, kept = vhost.read_text(), record.read_text()
    assert "disabled" not in kept  # an enabled site's record is as earlier releases wrote it
    assert re.search(rf"^\d+ \* \* \* \* root octopus site cron o1 {A}$",
                     (d7root / CRON).read_text(), re.M)

    before = contents(d7root)
    code, out, err = octopus(d7root, "site", "disable", "o1", A, "--dry-run")
    assert code == 0, err
    assert f"vhost.d/{A}.conf: update" in err and f"-48 * * * * root octopus site cron o1 {A}" \
        in err  # the vhost holds the database password: its diff is not shown
    assert contents(d7root) == before
    code, out, err = octopus(d7root, "site", "disable", "o1", A, "--dry-run", "--json")
    assert code == 0 and json.loads(out), err
    assert contents(d7root) == before

    code, _, err = octopus(d7root, "site", "disable", "o1", A, "--yes")
    assert code == 0, err
    text = vhost.read_text()
    assert f"server_name {A} dev.{A};" in text and "listen 443 ssl" in text
    assert "return 503 " in text and "add_header Retry-After 3600 always;" in text
    assert "fastcgi_pass" not in text and "location" not in text
    assert yaml.safe_load(record.read_text())["disabled"] is True
    cron = (d7root / CRON).read_text()
    assert f" {A}\n" not in cron and f"octopus site cron o1 {B}" in cron
    assert "return 503" not in (d7root / VHOST.format(B)).read_text()
    listed = json.loads(octopus(d7root, "site", "list", "o1", "--json")[1])["sites"]
    assert [(s["domain"], s["disabled"]) for s in listed] == [(A, True), (B, False)]
    assert re.search(rf"^{re.escape(A)} .* DISABLED$",
                     octopus(d7root, "site", "list", "o1")[1], re.M)
    code, _, err = octopus(d7root, "site", "disable", "o1", A, "--yes")
    assert code == 0 and "0 changed" in err, err
    # Its cron, were an old entry left, refuses to run.
    code, _, err = octopus(d7root, "site", "cron", "o1", A)
    assert code != 0 and err.strip().splitlines() == [
        f"error: {A} is disabled: its cron does not run (`octopus site enable o1 {A}`)"]

    code, _, err = octopus(d7root, "site", "enable", "o1", A, "--yes")
    assert code == 0, err
    assert vhost.read_text() == served and record.read_text() == kept
    assert f"octopus site cron o1 {A}" in (d7root / CRON).read_text()
    code, _, err = octopus(d7root, "site", "enable", "o1", A, "--yes")
    assert code == 0 and "0 changed" in err, err


@pytest.mark.parametrize(("args", "code", "message"), [
    (["site", "disable", "o1", "zzz.example.org"], 3, 'no site "zzz.example.org"'),
    (["site", "enable", "o9", A], 3, 'unknown instance "o9"'),
    (["site", "disable", "9x", A], 3, 'bad instance name "9x"'),
])
def test_bad_input_is_one_line_and_writes_nothing(d7root: Path, args: list[str], code: int,
                                                  message: str) -> None:
    before = contents(d7root)
    result = run("octopus", *args, "--root", str(d7root), "--yes")
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert contents(d7root) == before


@pytest.mark.parametrize("module", [True, False])
def test_redis_is_wired_only_when_the_platform_carries_the_module(module: bool) -> None:
    top = "/data/disk/o1/platforms/d7"
    platform = Platform(root=Path(top), core=DRUPAL7, version="7.101", major=7,
                        docroot=Path(top), redis_module=Path(f"{top}/sites/all/modules/redis")
                        if module else None)
    site = SiteRecord(A, "d7", "o1_a", "o1_a", "pw", hash_salt="s" * 43, installed=True)
    text = default_text("octopus", {"_PHP_FPM_VERSION": "8.2"})
    state = InstanceState(
        instance=Instance("o1"), instances=1, db_password="pw", sites=[site],
        config=validate(parse_text(text, "/root/.o1.octopus.cnf"), profile="octopus"),
        platforms=[PlatformRecord("d7", "/src", kind="drupal7")], codebases={"d7": platform},
        redis=RedisCredentials("o1", "redis-pw"))
    sites = next(c for c in build_instance(state, two_php_stack(), []) if c.name == "o1-sites")
    settings = next(r for r in sites.resources if isinstance(r, File)
                    and r.path.endswith("/settings.php")).wanted.decode()
    credentials = next(r for r in sites.resources if isinstance(r, File)
                       and r.path == f"/data/disk/o1/secrets/{A}.php").wanted.decode()
    assert "'username' => 'o1'" in credentials  # the instance's Redis user, either way
    wired = "$conf['cache_default_class'] = 'Redis_Cache';" in settings
    assert wired is module
    assert ("$conf['cache_prefix'] = 'o1:a.example.org:';" in settings) is module
    assert ("'sites/all/modules/redis/redis.autoload.inc'" in settings) is module
    # Drupal 7 goes back to its root at shutdown, which its open_basedir leaves out: only
    # that warning is dropped.
    assert "'chdir(): open_basedir restriction in effect. File(' . DRUPAL_ROOT . ')'" in settings
    check = health_component(state, [site]).resources[0]
    assert isinstance(check, SiteHealth) and check.redis_wired is module
