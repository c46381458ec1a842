"""Site clone, migrate, rename and upgrade: the path rewriting (SQL and PHP-serialized
values), the checks of a move (platform, core, version, profile), the steps of the safe
upgrade, and the three workflows rendered into a --root tree from synthetic platforms."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from installer.drupal.detect import detect
from installer.errors import ConfigError, UsageError
from installer.octopus.codebase import rebase
from installer.octopus.model import PlatformRecord, SiteRecord
from installer.octopus.sites.clone import destination
from installer.octopus.sites.migrate import moved, profile_on
from installer.octopus.sites.rewrite import (
    Rename,
    column_statements,
    count_statement,
    profile_statements,
    reserialized,
)
from installer.octopus.sites.upgrade import check_paths, trial_domain, upgrade_steps
from installer.plan import Component
from tests.cli.test_cli import run
from tests.unit.test_octopus import instance_state
from tests.unit.test_octopus_sites import d7_tree, d11_tree, octo

RENAME = Rename("a.example.org", "test.a.example.org")


# --------------------------------------------------------------------------- rewriting


@pytest.mark.parametrize(("before", "after"), [
    (b's:25:"sites/a.example.org/files";', b's:30:"sites/test.a.example.org/files";'),
    (b'a:2:{s:4:"logo";s:31:"sites/a.example.org/files/x.png";i:0;b:1;}',
     b'a:2:{s:4:"logo";s:36:"sites/test.a.example.org/files/x.png";i:0;b:1;}'),
    # A string that only looks like a token inside another string is data, not a token.
    (b's:35:"say s:3:"abc"; sites/a.example.org/";',
     b's:40:"say s:3:"abc"; sites/test.a.example.org/";'),
    # Multi-byte text: lengths are bytes.
    (b's:24:"\xc3\xa9 sites/a.example.org/x";', b's:29:"\xc3\xa9 sites/test.a.example.org/x";'),
    (b'O:8:"stdClass":1:{s:4:"path";s:20:"sites/a.example.org/";}',
     b'O:8:"stdClass":1:{s:4:"path";s:25:"sites/test.a.example.org/";}'),
    (b"i:5;", b"i:5;"),
    # Not what serialize() writes (a wrong length): left as it is.
    (b's:99:"sites/a.example.org/";', b's:99:"sites/a.example.org/";'),
])
def test_serialized_strings_are_rewritten_with_their_lengths(before: bytes,
                                                              after: bytes) -> None:
    assert reserialized(before, RENAME) == after


def test_absolute_urls_of_the_old_name_point_at_the_new_one() -> None:
    text = b'<img src="//a.example.org/sites/a.example.org/files/x.png"> sites/a.example.org/y'
    assert RENAME.text(text) == (b'<img src="//test.a.example.org/sites/test.a.example.org/'
                                 b'files/x.png"> sites/test.a.example.org/y')
    # Another site whose name ends with the old one is not touched.
    assert RENAME.text(b"sites/b.a.example.org/") == b"sites/b.a.example.org/"


def test_column_updates_touch_only_rows_holding_the_path() -> None:
    [statement] = column_statements("o1_db", [("field_data_body", "body_value")], RENAME)
    assert statement == (
        "UPDATE `o1_db`.`field_data_body` SET `body_value` = REPLACE(REPLACE(`body_value`, "
        "'//a.example.org/sites/a.example.org/', '//test.a.example.org/sites/"
        "test.a.example.org/'), 'sites/a.example.org/', 'sites/test.a.example.org/') "
        "WHERE `body_value` LIKE '%sites/a.example.org/%'")
    count = count_statement("o1_db", [("t", "c"), ("u", "d")], RENAME)
    assert count.count("UNION ALL") == 1 and "SELECT 't.c', COUNT(*) FROM `o1_db`.`t`" in count
    # `_` in a name only matches itself.
    weird = column_statements("db", [("t", "c")], Rename("a_b.org", "c.org"))[0]
    assert "LIKE '%sites/a\\\\_b.org/%'" in weird


def test_a_renamed_profile() -> None:
    variable, system = profile_statements("db", "default", "standard")
    assert variable == ("UPDATE `db`.variable SET value = X'733a383a227374616e64617264223b' "
                        "WHERE name = 'install_profile'")
    assert bytes.fromhex("733a383a227374616e64617264223b") == b's:8:"standard";'
    assert "SET name = 'standard', filename = 'profiles/standard/standard.profile'" in system


# --------------------------------------------------------------------------- planning


@pytest.fixture
def platforms(tmp_path: Path) -> dict[str, object]:
    old = d7_tree(tmp_path / "d795")
    (old / "includes/bootstrap.inc").write_text("<?php\ndefine('VERSION', '7.95');\n")
    new = d7_tree(tmp_path / "d7101")
    renamed = d7_tree(tmp_path / "renamed")
    (renamed / "profiles/standard").rename(renamed / "profiles/modern")
    (renamed / "profiles/modern/standard.info").rename(renamed / "profiles/modern/modern.info")
    (renamed / "profiles/modern/modern.info").write_text(
        "name = Modern\ncore = 7.x\nold_short_name = standard\n")
    d11 = d11_tree(tmp_path / "d11")
    codes = {name: rebase(detect(path), str(path)) for name, path in
             (("d795", old), ("d7101", new), ("renamed", renamed), ("d11", d11))}
    site = SiteRecord("a.example.org", "d7101", "o1_a", "o1_a", "pw", hash_salt="salt",
                      installed=True, profile="standard")
    state = replace(instance_state("8.2", [site]),
                    platforms=[PlatformRecord(n, "/src") for n in codes], codebases=codes)
    return {"state": state, "site": site, "codes": codes}


def test_a_move_goes_to_drupal_of_the_same_family_never_older(
        platforms: dict[str, object]) -> None:
    state, site = platforms["state"], platforms["site"]
    assert isinstance(site, SiteRecord)
    with pytest.raises(UsageError, match=r"older than the site's 7\.101; code is never "
                                         "downgraded"):
        destination(state, site, "d795", "migrate")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="another major version"):
        destination(state, site, "d11", "migrate")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match='no platform "nope"'):
        destination(state, site, "nope", "migrate")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not written by octopus"):
        destination(state, replace(site, hash_salt=""), "d7101", "clone")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="already on platform d7101"):
        moved(state, site, "d7101", site.domain)  # type: ignore[arg-type]
    new, _code = moved(state, site, "d7101", "b.example.org")  # type: ignore[arg-type]
    assert (new.domain, new.platform, new.db_name, new.db_password) == (
        "b.example.org", "d7101", "o1_a", "pw")


def test_a_profile_renamed_between_platforms_is_followed(platforms: dict[str, object]) -> None:
    codes = platforms["codes"]
    assert isinstance(codes, dict)
    assert profile_on(codes["renamed"], "standard") == "modern"
    assert profile_on(codes["d7101"], "standard") == "standard"
    assert profile_on(codes["d7101"], "") == ""
    with pytest.raises(UsageError, match="install profile custom is not on"):
        profile_on(codes["d7101"], "custom")


def test_upgrade_steps_touch_the_live_site_last() -> None:
    verify: list[Component] = []
    steps = upgrade_steps("o1", "Live.Example.org", "d7101", lambda c, f, r: verify,
                          ["/node/1"], since=1)
    assert [(s.number, s.command, s.live) for s in steps] == [
        (1, "platform-verify", False), (2, "site-clone", False), (3, "site-migrate", False),
        (4, "site-check", False), (5, "site-remove", False), (6, "site-migrate", True)]
    assert steps[1].what == "clone live.example.org to upgrade-test.live.example.org"
    assert "/node/1" in steps[3].what
    kept = upgrade_steps("o1", "live.example.org", "d7101", lambda c, f, r: verify,
                         keep_clone=True)
    assert [s.number for s in kept] == [1, 2, 3, 4, 6]
    assert trial_domain("a.org") == "upgrade-test.a.org"


@pytest.mark.parametrize("path", ["node/1", "/a b", "/x\n", "", "http://x/"])
def test_check_paths_are_url_paths(path: str) -> None:
    with pytest.raises(UsageError, match="--check-path"):
        check_paths([path])


# --------------------------------------------------------------------------- --root runs


@pytest.fixture(scope="module")
def lifecycle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lifecycle")
    src = tmp_path_factory.mktemp("lifecycle-src")
    assert run("barracuda", "install", "--root", str(root), "--yes").returncode == 0
    old = d7_tree(src / "d795")
    (old / "includes/bootstrap.inc").write_text("<?php\ndefine('VERSION', '7.95');\n")
    d7_tree(src / "d7101")
    for args in (["install", "o1"],
                 ["platform", "add", "o1", "d795", "--path", str(src / "d795")],
                 ["platform", "add", "o1", "d7101", "--path", str(src / "d7101")],
                 ["site", "add", "o1", "a.example.org", "--platform", "d795", "--install",
                  "--alias", "dev.a.example.org"]):
        code, err = octo(root, *args)
        assert code == 0, err
    site = root / "data/disk/o1/platforms/d795/sites/a.example.org"
    (site / "files/photo.png").write_bytes(b"png")
    (site / "local.settings.php").write_text("<?php\n")
    return root


def site_record(root: Path, domain: str) -> dict[str, object]:
    data = yaml.safe_load((root / f"data/disk/o1/config/sites/{domain}.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_clone_under_root(lifecycle_root: Path) -> None:
    root = lifecycle_root
    code, err = octo(root, "site", "clone", "o1", "a.example.org", "test.a.example.org")
    assert code == 0, err
    source, clone = site_record(root, "a.example.org"), site_record(root, "test.a.example.org")
    assert clone["aliases"] == [] and clone["platform"] == "d795"
    assert clone["db_name"] == "o1_test_a_example_org"
    for key in ("db_user", "db_password", "hash_salt"):
        assert clone[key] != source[key], key
    copy = root / "data/disk/o1/platforms/d795/sites/test.a.example.org"
    assert (copy / "files/photo.png").read_bytes() == b"png"
    assert (copy / "local.settings.php").is_file()
    settings = (copy / "settings.php").read_text()
    assert str(clone["hash_salt"]) in settings and "'dev.a.example.org'" not in settings
    assert not (copy / "settings.php.barracuda-orig").exists()
    assert "site-database:test.a.example.org" in err and "sites/a.example.org/ rewritten to " \
        "sites/test.a.example.org/" in err
    vhost = root / "data/disk/o1/config/server_master/nginx/vhost.d/test.a.example.org.conf"
    assert "dev.a.example.org" not in vhost.read_text()
    code, err = octo(root, "site", "clone", "o1", "a.example.org", "test.a.example.org")
    assert code != 0 and "duplicate domain test.a.example.org" in err


def test_migrate_and_rename_under_root(lifecycle_root: Path) -> None:
    root = lifecycle_root
    platforms = root / "data/disk/o1/platforms"
    code, err = octo(root, "site", "migrate", "o1", "test.a.example.org", "--platform",
                     "d7101", "--dry-run")
    assert code == 0 and "maintenance:test.a.example.org:on" in err and \
        "the database updates of Drupal 7.101 run" in err, err
    assert (platforms / "d795/sites/test.a.example.org").is_dir()  # a dry run moved nothing
    code, err = octo(root, "site", "migrate", "o1", "test.a.example.org", "--platform", "d7101")
    assert code == 0, err
    assert site_record(root, "test.a.example.org")["platform"] == "d7101"
    assert (platforms / "d7101/sites/test.a.example.org/files/photo.png").is_file()
    assert not (platforms / "d795/sites/test.a.example.org").exists()
    vhost = root / "data/disk/o1/config/server_master/nginx/vhost.d/test.a.example.org.conf"
    assert "root /data/disk/o1/platforms/d7101;" in vhost.read_text()
    code, err = octo(root, "site", "migrate", "o1", "test.a.example.org", "--platform", "d7101")
    assert code == 0 and "0 changed" in err, err
    code, err = octo(root, "site", "rename", "o1", "test.a.example.org", "b.example.org")
    assert code == 0, err
    renamed = site_record(root, "b.example.org")
    assert renamed["db_name"] == "o1_test_a_example_org"  # the database keeps its name
    assert not (root / "data/disk/o1/config/sites/test.a.example.org.yml").exists()
    assert not (root / "data/disk/o1/secrets/test.a.example.org.php").exists()
    assert not vhost.exists()
    assert (platforms / "d7101/sites/b.example.org/files/photo.png").is_file()
    code, err = octo(root, "site", "rename", "o1", "test.a.example.org", "b.example.org")
    assert code == 0 and "0 changed" in err, err
    code, err = octo(root, "site", "rename", "o1", "b.example.org", "a.example.org")
    assert code != 0 and "duplicate domain a.example.org" in err


def test_upgrade_dry_run_prints_every_step(lifecycle_root: Path) -> None:
    code, err = octo(lifecycle_root, "site", "upgrade", "o1", "a.example.org", "--platform",
                     "d7101", "--check-path", "/node", "--dry-run")
    assert code == 0, err
    for number in range(1, 7):
        assert f"  {number}. " in err, err
    assert "== step 3: migrate upgrade-test.a.example.org to platform d7101 (planned once " \
        "step 2 made the clone)" in err
    assert "site-copy:/data/disk/o1/platforms/d795/sites/upgrade-test.a.example.org" in err
    assert "site-copy:/data/disk/o1/platforms/d7101/sites/a.example.org" in err
    assert not (lifecycle_root / "data/disk/o1/config/sites/upgrade-test.a.example.org.yml"
                ).exists()
    code, err = octo(lifecycle_root, "site", "upgrade", "o1", "a.example.org", "--platform",
                     "d7101", "--check-path", "node", "--dry-run")
    assert code == 2 and "--check-path 'node'" in err


def test_upgrade_under_root_runs_the_steps_in_order(lifecycle_root: Path) -> None:
    import json

    root = lifecycle_root
    result = run("octopus", "site", "upgrade", "o1", "a.example.org", "--platform", "d7101",
                 "--json", "--root", str(root), "--yes")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert [(s["step"], s["ok"]) for s in report["steps"]] == [
        (n, True) for n in (1, 2, 3, 4, 5, 6)] and report["upgraded"] is True
    assert site_record(root, "a.example.org")["platform"] == "d7101"
    assert not (root / "data/disk/o1/config/sites/upgrade-test.a.example.org.yml").exists()
    assert "== the test clone passed: a.example.org moves now" in result.stderr
    # A step that fails stops before the live site; the clone is removed all the same.
    before = (root / "data/disk/o1/config/sites/a.example.org.yml").read_text()
    code, err = octo(root, "site", "upgrade", "o1", "a.example.org", "--platform", "d795")
    assert code != 0 and "stopped: step 3 (migrate upgrade-test.a.example.org to platform " \
        "d795) failed; the live site was not touched" in err, err[-3000:]
    assert "older than the site's 7.101" in err and "== step 5" in err and "== step 6" not in err
    assert (root / "data/disk/o1/config/sites/a.example.org.yml").read_text() == before
    assert not (root / "data/disk/o1/config/sites/upgrade-test.a.example.org.yml").exists()
