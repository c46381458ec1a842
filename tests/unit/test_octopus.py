"""Octopus logic: name rules, database identifiers, pool sizing at the edges, and whole
instances built in a --root tree through the CLI (what is written, the second run, errors)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from installer.config import default_text
from installer.config.cnf import parse_text
from installer.config.schema import validate
from installer.data import load_profile
from installer.errors import ConfigError
from installer.octopus.components import InstanceState, build_instance
from installer.octopus.model import Instance, PlatformRecord, SiteRecord
from installer.octopus.names import (
    check_domain,
    check_instance_name,
    check_platform_name,
    db_identifier,
    db_prefix,
)
from installer.octopus.sizing import pool_size
from installer.resources.base import reload
from installer.stack.context import StackContext
from installer.stack.release import Release
from installer.stack.tuning import Tuning, TuningFacts, compute
from tests.cli.test_cli import run, tree


@pytest.mark.parametrize("name", ["o1", "o2", "client-a", "shop.eu", "a" * 24])
def test_good_instance_names(name: str) -> None:
    assert check_instance_name(name) == name


@pytest.mark.parametrize(("name", "why"), [
    ("1o", "starting with a letter"), ("O1", "lowercase"), ("o_1", "dashes"), ("", "letters"),
    ("a" * 25, "at most 24"), ("admin", "reserved"), ("all", "reserved"),
    ("hostmaster", "reserved"), ("mydrupal", 'contain "drupal"'), ("sites2", 'contain "sites"'),
    ("o1 ", "letters"), ("o1;rm", "letters"),
])
def test_bad_instance_names(name: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        check_instance_name(name)


def test_domains_and_platform_names() -> None:
    assert check_domain("Example.ORG.") == "example.org"
    for bad in ("example", "-a.example.org", "a_b.example.org", "http://x.org", "x.org/a", ""):
        with pytest.raises(ConfigError, match="bad domain"):
            check_domain(bad)
    assert check_platform_name("drupal-10.3_a") == "drupal-10.3_a"
    with pytest.raises(ConfigError, match="bad platform name"):
        check_platform_name("../etc")


def test_database_identifiers_fit_mariadb_limits() -> None:
    assert db_prefix("shop.eu-1") == "shop_eu_1"
    assert db_identifier("o1", "one.example.org", 64) == "o1_one_example_org"
    long = "a-very-long-subdomain.with-many-labels.example.org"
    user = db_identifier("o1", long, 32)
    assert len(user) == 32 and re.fullmatch(r"[a-z0-9_]+", user)
    assert user != db_identifier("o1", long.replace("many", "more"), 32)


def tuning(ram_mib: int, cpus: int) -> Tuning:
    return compute(load_profile("tuning"), TuningFacts(ram_mib=ram_mib, cpus=cpus))


@pytest.mark.parametrize(("ram", "cpus", "instances"), [
    (1024, 1, 1), (1024, 1, 20), (2048, 2, 3), (262144, 64, 1), (262144, 64, 200),
])
def test_pool_size_shares_the_machine_budget(ram: int, cpus: int, instances: int) -> None:
    t = tuning(ram, cpus)
    size = pool_size(t, instances, None)
    minimum = load_profile("tuning")["php"]["pool"]["children_min"]
    assert size.children == max(minimum, t.php.pm_max_children // instances)
    assert size.children >= minimum
    if instances * size.children > t.php.pm_max_children:
        assert size.children == minimum  # only the floor may oversubscribe
    assert str(instances) in size.rule


def test_pool_size_override() -> None:
    assert pool_size(tuning(4096, 4), 5, 12).children == 12


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One instance with a platform and a site, shared by the tests below: none of them
    changes it (they read it, plan, or assert that a bad command wrote nothing)."""
    tmp_path = tmp_path_factory.mktemp("octopus")
    assert run("barracuda", "install", "--root", str(tmp_path), "--yes").returncode == 0
    platform = tmp_path.parent / f"{tmp_path.name}-platform"
    platform.mkdir()
    (platform / "index.php").write_text("<?php echo 'hi';\n")
    (platform / "core/lib").mkdir(parents=True)
    (platform / "core/lib/Drupal.php").write_text("<?php\n")
    root = str(tmp_path)
    for args in (["install", "o1", "--email", "ops@example.org"],
                 ["platform", "add", "o1", "d10", "--path", str(platform)],
                 ["site", "add", "o1", "a.example.org", "--platform", "d10", "--alias",
                  "www.a.example.org"]):
        result = run("octopus", *args, "--root", root, "--yes")
        assert result.returncode == 0, result.stderr
    return tmp_path


def test_instance_tree_records_and_includes(converged: Path) -> None:
    root = converged
    cnf = (root / "root/.o1.octopus.cnf").read_text()
    assert '_MY_EMAIL="ops@example.org"' in cnf
    assert (root / "root/.o1.octopus.cnf").stat().st_mode & 0o777 == 0o600
    assert (root / "data/disk/o1").stat().st_mode & 0o777 == 0o711
    assert (root / "data/disk/o1/config").stat().st_mode & 0o777 == 0o700
    record = yaml.safe_load((root / "data/disk/o1/config/sites/a.example.org.yml").read_text())
    assert record["db_name"] == "o1_a_example_org" and len(record["db_password"]) == 64
    assert (root / "data/disk/o1/config/sites/a.example.org.yml").stat().st_mode & 0o777 == 0o600
    platform = yaml.safe_load((root / "data/disk/o1/config/platforms/d10.yml").read_text())
    assert platform["kind"] == "drupal" and platform["via"] == "copy"
    assert (root / "data/disk/o1/platforms/d10/index.php").stat().st_mode & 0o777 == 0o640
    files = root / "data/disk/o1/platforms/d10/sites/a.example.org/files"
    assert files.stat().st_mode & 0o7777 == 0o2770
    vhost = (root / "data/disk/o1/config/server_master/nginx/vhost.d/a.example.org.conf")
    text = vhost.read_text()
    assert "server_name a.example.org www.a.example.org;" in text
    assert f"fastcgi_param db_passwd {record['db_password']};" in text
    assert vhost.stat().st_mode & 0o777 == 0o600
    include = (root / "var/aegir/config/server_master/nginx/platform.d/o1.conf").read_text()
    assert re.search(r"upstream octopus-o1-php\d+ \{\n    server unix:/run/php/o1\.\d\.\d\.sock;",
                     include)
    pool = next((root / "etc/php").glob("*/fpm/pool.d/o1.conf")).read_text()
    assert "user = o1.web" in pool and "listen.owner = www-data" in pool
    assert "php_admin_value[open_basedir] = /data/disk/o1/platforms/:" in pool
    assert re.search(r"pm.max_children = \d+", pool)


def test_second_run_changes_nothing_and_logs_no_secret(converged: Path) -> None:
    again = run("octopus", "up-stable", "all", "--root", str(converged), "--yes")
    assert again.returncode == 0, again.stderr
    summaries = [line for line in again.stderr.splitlines() if " changed, " in line]
    assert summaries and summaries[0].startswith("0 changed, ")
    password = yaml.safe_load((converged / "data/disk/o1/config/sites/a.example.org.yml")
                              .read_text())["db_password"]
    for log in (converged / "var/log/barracuda").glob("*.log"):
        assert password not in log.read_text(), log


@pytest.mark.parametrize(("args", "code", "message"), [
    (["install", "9x"], 3, 'bad instance name "9x"'),
    (["install", "o2", "--email", "not-an-address"], 3, "_MY_EMAIL"),
    (["install", "o2", "--php", "9.9"], 3, "_PHP_FPM_VERSION"),
    (["install", "o1", "--email", "other@example.org"], 3, "change it in /root/.o1.octopus.cnf"),
    (["up-stable", "o7"], 3, 'unknown instance "o7"'),
    (["site", "add", "o1", "a.example.org", "--platform", "d10"], 3, "duplicate domain"),
    (["site", "add", "o1", "b.example.org", "--platform", "nope"], 3, 'no platform "nope"'),
    (["site", "add", "o1", "b.example.org", "--platform", "d10", "--php", "7.0"], 3,
     "PHP 7.0 is not installed"),
    (["site", "remove", "o1", "zzz.example.org"], 3, 'no site "zzz.example.org"'),
    (["platform", "add", "o1", "x", "--path", "/nonexistent"], 3, "not a directory"),
    (["platform", "add", "o1", "x"], 2, "exactly one of --path DIR and --git URL"),
    (["platform", "remove", "o1", "d10"], 3, "used by a.example.org"),
    (["remove", "o1"], 2, "pass --force"),
])
def test_bad_input_is_one_line_and_writes_nothing(converged: Path, args: list[str], code: int,
                                                  message: str) -> None:
    before = tree(converged)
    result = run("octopus", *args, "--root", str(converged), "--yes")
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert tree(converged) == before


def test_site_remove_plans_backup_then_removal(converged: Path) -> None:
    plan = run("octopus", "site", "remove", "o1", "a.example.org", "--root", str(converged),
               "--dry-run")
    assert plan.returncode == 0, plan.stderr
    out = plan.stderr
    order = [out.index(marker) for marker in (
        "archive:/data/disk/o1/backups/a.example.org-", "absent:/data/disk/o1/config/"
        "server_master/nginx/vhost.d/a.example.org.conf", "databases-absent:o1-a.example.org",
        "tree-absent:/data/disk/o1/platforms/d10/sites/a.example.org")]
    assert order == sorted(order)


def test_list_and_status(converged: Path) -> None:
    assert run("octopus", "list", "--root", str(converged)).stdout.split() == ["o1"]
    status = run("octopus", "status", "o1", "--root", str(converged))
    assert "site a.example.org on d10 (aliases www.a.example.org)" in status.stdout
    assert "last converge: " in status.stdout and "never" not in status.stdout
    sites = run("octopus", "site", "list", "o1", "--root", str(converged), "--json")
    assert '"database": "o1_a_example_org"' in sites.stdout


def two_php_stack() -> StackContext:
    data = copy.deepcopy(load_profile("distros")["releases"]["bookworm"])
    data["php"]["versions"] = ["8.2", "8.3"]
    return StackContext(release=Release("bookworm", data),
                        paths={k: str(v) for k, v in load_profile("paths").items()},
                        tuning=tuning(4096, 2), php_versions=("8.2", "8.3"), php_cli="8.2",
                        mariadb_root_password="x", redis_password="y")


def instance_state(php: str, sites: list[SiteRecord]) -> InstanceState:
    text = default_text("octopus", {"_PHP_FPM_VERSION": php})
    config = validate(parse_text(text, "/root/.o1.octopus.cnf"), profile="octopus")
    return InstanceState(instance=Instance("o1"), config=config,
                         platforms=[PlatformRecord("web", "/src")], sites=sites, instances=1,
                         db_password="pw")


def test_php_switch_starts_the_new_pool_first_and_drops_the_old_one_last() -> None:
    stack = two_php_stack()
    site = SiteRecord("a.example.org", "web", "o1_a", "o1_a", "pw")
    components = build_instance(instance_state("8.3", [site]), stack, [])
    names = [c.name for c in components]
    assert names.index("o1-php8.3") < names.index("o1-nginx") < names.index("o1-old-pools")
    assert "o1-php8.2" not in names
    nginx = next(c for c in components if c.name == "o1-nginx")
    vhost = next(r for r in nginx.resources if getattr(r, "path", "").endswith(".conf")
                 and "vhost.d" in r.path)  # type: ignore[attr-defined]
    assert b"fastcgi_pass octopus-o1-php83;" in vhost.wanted  # type: ignore[attr-defined]
    old = next(c for c in components if c.name == "o1-old-pools")
    assert [r.id for r in old.resources] == ["absent:/etc/php/8.2/fpm/pool.d/o1.conf"]
    assert old.resources[0].notify == (reload("php8.2-fpm"),)


def test_a_site_on_another_version_gets_a_pool_of_its_own() -> None:
    stack = two_php_stack()
    sites = [SiteRecord("a.example.org", "web", "o1_a", "o1_a", "pw"),
             SiteRecord("b.example.org", "web", "o1_b", "o1_b", "pw", php="8.3")]
    state = instance_state("8.2", sites)
    assert state.php_versions == ["8.2", "8.3"]
    names = [c.name for c in build_instance(state, stack, [])]
    assert "o1-php8.2" in names and "o1-php8.3" in names


def test_two_sites_on_one_platform() -> None:
    sites = [SiteRecord("a.example.org", "web", "o1_a", "o1_a", "pw"),
             SiteRecord("b.example.org", "web", "o1_b", "o1_b", "pw")]
    components = build_instance(instance_state("8.2", sites), two_php_stack(), [])
    site_dirs = next(c for c in components if c.name == "o1-sites").resources
    ids = [r.id for r in site_dirs]
    assert ids.count("dir:/data/disk/o1/platforms/web/sites") == 1
    assert "dir:/data/disk/o1/platforms/web/sites/b.example.org/files" in ids
