"""Drupal sites through octopus, rendered into a --root tree from synthetic platform trees:
platforms that know what they are, the site tree with its settings.php and credentials
file, --install planned in its late phase, takeover of an existing site, site cron, the
instance's Redis user, and the one-line refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from installer.octopus.components import Phase, build_instance
from installer.octopus.model import Instance, PlatformRecord, SiteRecord
from installer.stack.redis import tenant_rules
from tests.cli.test_cli import run, tree
from tests.unit.test_octopus import instance_state, two_php_stack


def d7_tree(top: Path) -> Path:
    (top / "includes").mkdir(parents=True)
    (top / "includes/bootstrap.inc").write_text(
        "<?php\ndefine('VERSION', '7.101');\ndefine('DRUPAL_MINIMUM_PHP', '5.3.3');\n")
    for name in ("standard", "minimal"):
        (top / f"profiles/{name}").mkdir(parents=True)
        (top / f"profiles/{name}/{name}.info").write_text(f"name = {name}\ncore = 7.x\n")
    (top / "index.php").write_text("<?php\n")
    (top / "sites").mkdir()
    return top


def d11_tree(top: Path, php_id: int = 80100) -> Path:
    web = top / "web"
    (web / "core/lib").mkdir(parents=True)
    (web / "core/lib/Drupal.php").write_text(
        "<?php\nclass Drupal {\n  const VERSION = '11.2.8';\n  const MINIMUM_PHP = '8.1.0';\n}\n")
    (web / "core/profiles/standard").mkdir(parents=True)
    (web / "core/profiles/standard/standard.info.yml").write_text(
        "name: Standard\ntype: profile\n")
    (web / "index.php").write_text("<?php\n")
    (top / "vendor/bin").mkdir(parents=True)
    (top / "vendor/bin/drush").write_text("#!/bin/sh\n")
    (top / "vendor/composer").mkdir()
    (top / "vendor/composer/platform_check.php").write_text(
        f"<?php\nif (!(PHP_VERSION_ID >= {php_id})) {{ exit(1); }}\n")
    return top


def octo(root: Path, *args: str) -> tuple[int, str]:
    result = run("octopus", *args, "--root", str(root), "--yes")
    return result.returncode, result.stderr


@pytest.fixture(scope="module")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sites")
    src = tmp_path_factory.mktemp("src")
    assert run("barracuda", "install", "--root", str(root), "--yes").returncode == 0
    d7 = d7_tree(src / "d7")
    d11 = d11_tree(src / "d11", php_id=80100)
    (d7 / "sites/old.example.org").mkdir()
    (d7 / "sites/old.example.org/settings.php").write_text("<?php\n$databases = [];\n")
    for args in (["install", "o1"],
                 ["platform", "add", "o1", "d7", "--path", str(d7)],
                 ["platform", "add", "o1", "d11", "--path", str(d11)],
                 ["site", "add", "o1", "a.example.org", "--platform", "d7", "--install",
                  "--alias", "dev.a.example.org"],
                 ["site", "add", "o1", "b.example.org", "--platform", "d11", "--install"],
                 ["site", "add", "o1", "old.example.org", "--platform", "d7"]):
        code, err = octo(root, *args)
        assert code == 0, err
    return root


def test_platform_records_what_the_tree_is(site_root: Path) -> None:
    d11 = yaml.safe_load((site_root / "data/disk/o1/config/platforms/d11.yml").read_text())
    assert d11["kind"] == "drupal" and d11["detected"]["docroot"] == "web"
    assert d11["detected"]["version"] == "11.2.8"
    assert d11["detected"]["drush"] == "/data/disk/o1/platforms/d11/vendor/bin/drush"
    d7 = yaml.safe_load((site_root / "data/disk/o1/config/platforms/d7.yml").read_text())
    assert d7["detected"]["profiles"] == ["minimal", "standard"] and d7["kind"] == "drupal7"
    listed = run("octopus", "platform", "list", "o1", "--root", str(site_root)).stdout
    assert re.search(r"d11\s+Drupal 11\.2\.8\s+docroot web\s+profiles standard\s+sites "
                     r"b\.example\.org", listed), listed
    assert re.search(r"d7\s+Drupal 7\.101\s+docroot \.\s+profiles minimal,standard", listed)


def test_the_vhost_serves_the_docroot(site_root: Path) -> None:
    vhosts = site_root / "data/disk/o1/config/server_master/nginx/vhost.d"
    assert "root /data/disk/o1/platforms/d11/web;" in (vhosts / "b.example.org.conf").read_text()
    assert "root /data/disk/o1/platforms/d7;" in (vhosts / "a.example.org.conf").read_text()
    site = site_root / "data/disk/o1/platforms/d11/web/sites/b.example.org"
    assert (site / "private/config/sync").is_dir() and (site / "settings.php").is_file()
    assert not (site_root / "data/disk/o1/platforms/d7/sites/a.example.org/private/config"
                ).exists()


def test_site_tree_settings_and_credentials(site_root: Path) -> None:
    record = yaml.safe_load((site_root / "data/disk/o1/config/sites/a.example.org.yml")
                            .read_text())
    assert record["installed"] is True and record["profile"] == "standard"
    assert len(record["hash_salt"]) >= 43 and record["docroot"] == ""
    site = site_root / "data/disk/o1/platforms/d7/sites/a.example.org"
    modes = {p: (site / p).stat().st_mode & 0o7777 for p in
             ("", "files", "private", "private/files", "private/temp", "settings.php")}
    assert modes == {"": 0o750, "files": 0o2770, "private": 0o2770, "private/files": 0o2770,
                     "private/temp": 0o2770, "settings.php": 0o440}
    settings = (site / "settings.php").read_text()
    assert record["hash_salt"] in settings and record["db_password"] not in settings
    assert "/data/disk/o1/secrets/a.example.org.php" in settings
    assert "'dev.a.example.org'" in settings  # errors shown on the dev alias only
    creds = site_root / "data/disk/o1/secrets/a.example.org.php"
    assert creds.stat().st_mode & 0o777 == 0o440
    text = creds.read_text()
    assert record["db_password"] in text and "'username' => 'o1'" in text  # Redis user
    secrets = site_root / "data/disk/o1/secrets"
    assert secrets.stat().st_mode & 0o777 == 0o750
    pool = next((site_root / "etc/php").glob("*/fpm/pool.d/o1.conf")).read_text()
    assert "/data/disk/o1/secrets/" in pool.split("open_basedir] = ", 1)[1].splitlines()[0]
    assert (site_root / "data/disk/o1/tools/d7tool.php").is_file()


def test_an_existing_site_is_taken_over(site_root: Path) -> None:
    site = site_root / "data/disk/o1/platforms/d7/sites/old.example.org"
    assert (site / "settings.php.barracuda-orig").read_text() == "<?php\n$databases = [];\n"
    assert "Managed by barracuda" in (site / "settings.php").read_text()
    record = yaml.safe_load((site_root / "data/disk/o1/config/sites/old.example.org.yml")
                            .read_text())
    assert record["installed"] is False and record["hash_salt"]


def test_cron_runs_each_installed_site_at_its_own_minute(site_root: Path) -> None:
    cron = (site_root / "etc/cron.d/barracuda-octopus-o1").read_text()
    jobs = re.findall(r"^(\d+) \* \* \* \* root octopus site cron o1 (\S+)$", cron, re.M)
    assert sorted(domain for _, domain in jobs) == ["a.example.org", "b.example.org"]
    assert "old.example.org" not in cron  # not installed by us


def test_redis_user_of_the_instance(site_root: Path) -> None:
    acl = (site_root / "etc/redis/acl.d/o1.conf").read_text()
    assert re.search(r"^user o1 reset on #[0-9a-f]{64} ~o1:\* &o1:\* \+@all -@dangerous "
                     r"-@admin -scan$", acl, re.M), acl
    conf = (site_root / "etc/redis/redis.conf").read_text()
    assert "include /etc/redis/acl.d/*.conf" in conf
    assert "-@dangerous" in tenant_rules("o1", "pw")


def test_second_run_changes_nothing(site_root: Path) -> None:
    result = run("octopus", "up-stable", "o1", "--root", str(site_root), "--yes")
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("0 changed, ") for line in result.stderr.splitlines()), \
        result.stderr[-2000:]


def test_install_is_planned_after_the_settings_and_before_the_vhost(site_root: Path) -> None:
    plan = run("octopus", "site", "add", "o1", "c.example.org", "--platform", "d7",
               "--install", "--root", str(site_root), "--dry-run").stderr
    marks = ["/sites/c.example.org/settings.php", "drupal-install:c.example.org",
             "vhost.d/c.example.org.conf"]
    assert all(m in plan for m in marks), plan[-3000:]
    assert [plan.index(m) for m in marks] == sorted(plan.index(m) for m in marks)


@pytest.mark.parametrize(("args", "code", "message"), [
    (["site", "add", "o1", "c.example.org", "--platform", "d7", "--install", "--profile",
      "nosuch"], 2, "--profile nosuch: platform d7 offers minimal, standard"),
    (["site", "add", "o1", "old2.example.org", "--platform", "plain", "--install"], 2,
     "platform plain is not Drupal"),
    (["platform", "add", "o1", "new", "--path", "{src}/d12"], 2,
     "needs PHP 9.0.0 or later (vendor/composer/platform_check.php); instance o1 runs PHP"),
    (["platform", "add", "o1", "new", "--path", "{src}/noindex"], 3,
     "no index.php front controller in web"),
    (["site", "verify", "o1"], 2, "give a site's domain or --all"),
])
def test_refusals_are_one_line_and_change_nothing(site_root: Path, tmp_path: Path,
                                                  args: list[str], code: int,
                                                  message: str) -> None:
    d11_tree(tmp_path / "d12", php_id=90000)
    noindex = d11_tree(tmp_path / "noindex")
    (noindex / "web/index.php").unlink()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "index.php").write_text("<?php\n")
    if "plain" in args:
        assert octo(site_root, "platform", "add", "o1", "plain", "--path", str(plain))[0] == 0
    args = [a.replace("{src}", str(tmp_path)) for a in args]
    before = tree(site_root)
    result = run("octopus", *args, "--root", str(site_root), "--yes")
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert tree(site_root) == before


def test_old_records_stay_readable() -> None:
    old = yaml.safe_dump({"name": "web", "source": "/src", "via": "copy", "ref": "",
                          "kind": "drupal7"})
    record = PlatformRecord(**yaml.safe_load(old))
    assert record.docroot == "" and record.describe() == "drupal7"
    site = SiteRecord("a.example.org", "web", "o1_a", "o1_a", "pw")
    assert Instance("o1").site_dir(site) == "/data/disk/o1/platforms/web/sites/a.example.org"
    components = build_instance(instance_state("8.2", [site]), two_php_stack(), [])
    sites = next(c for c in components if c.name == "o1-sites")
    assert not any(r.id.endswith("settings.php") for r in sites.resources)
    assert sites.phase < Phase.INSTALL < Phase.NGINX


def test_the_monitor_never_kills_a_site_cron_midrun() -> None:
    from installer.agents.monitor.probes import Proc
    from installer.agents.monitor.system import runaways
    procs = {1: Proc(1, "init", 0, 0), 10: Proc(10, "cron", 1, 0),
             11: Proc(11, "octopus", 10, 0), 12: Proc(12, "runuser", 11, 0),
             13: Proc(13, "php8.2", 12, 0), 20: Proc(20, "php8.2", 1, 0)}
    assert [p.pid for p in runaways(procs, ["php"], 10, 1000)] == [20]
