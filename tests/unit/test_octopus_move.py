"""octopus site export/import around the archive: which site an import takes, which
platform it may land on, what an export accepts at --to (real tar and zstd), and the
README's Ansible example being the files the box test runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from installer.errors import ConfigError
from installer.octopus.model import PlatformRecord
from installer.octopus.sites.export import holds
from installer.octopus.sites.import_ import core_of
from installer.octopus.sites.restore import open_source
from installer.runner import SubprocessRunner

REPO = Path(__file__).resolve().parents[2]
needs_zstd = pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")


def archive(tmp_path: Path, domains: list[str], kind: str = "site") -> Path:
    stage = tmp_path / "stage"
    (stage / "records").mkdir(parents=True)
    (stage / "tree").mkdir()
    manifest = {
        "kind": kind, "instance": "o1", "created": "",
        "tree": "/data/disk/o1/platforms/d7/sites/" + domains[0] if kind == "site"
        else "/data/disk/o1/platforms",
        "sites": [{"domain": d, "platform": "d7", "db_name": "o1_x", "db_user": "o1_x",
                   "aliases": []} for d in domains],
        "platforms": [], "databases": {},
    }
    (stage / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / f"{len(domains)}.tar.zst"
    subprocess.run(["tar", "--zstd", "-cf", str(out), "-C", str(stage), "manifest.json",
                    "records", "tree"], check=True)
    return out


@needs_zstd
def test_an_import_takes_the_only_site_of_the_archive(tmp_path: Path) -> None:
    source = open_source(SubprocessRunner(), archive(tmp_path, ["a.org"]), None)
    assert source.site.domain == "a.org" and source.site_member == "tree"


@needs_zstd
def test_an_archive_of_several_sites_is_refused_by_import(tmp_path: Path) -> None:
    two = archive(tmp_path, ["a.org", "b.org"], kind="instance")
    with pytest.raises(ConfigError, match=r"holds 2 sites \(a\.org b\.org\), not one"):
        open_source(SubprocessRunner(), two, None)


@needs_zstd
def test_export_recognises_its_own_archive_only(tmp_path: Path) -> None:
    runner = SubprocessRunner()
    one = archive(tmp_path, ["a.org"])
    assert holds(runner, one, "o1", "a.org")
    assert not holds(runner, one, "o2", "a.org")
    assert not holds(runner, one, "o1", "b.org")
    other = tmp_path / "other.tar.zst"
    other.write_text("an operator's file")
    assert not holds(runner, other, "o1", "a.org")


def platform(core: str, version: str = "", kind: str = "plain") -> PlatformRecord:
    return PlatformRecord(name="p", source="/x", kind=kind,
                          detected={"core": core, "version": version} if core else {})


def test_cores_match_by_core_and_major_version() -> None:
    assert core_of(platform("drupal7", "7.101")) == core_of(platform("drupal7", "7.95"))
    assert core_of(platform("drupal", "11.2.8")) == ("drupal", "11")
    assert core_of(platform("drupal", "10.3.1")) != core_of(platform("drupal", "11.2.8"))
    assert core_of(platform("drupal7", "7.101")) != core_of(platform("drupal", "11.2.8"))
    assert core_of(platform("php")) == ("php", "")
    assert core_of(platform("", kind="drupal7")) == ("drupal7", "")


def test_the_readme_shows_the_example_the_box_test_runs() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Many servers", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    examples = REPO / "ansible" / "examples"
    assert blocks == [(examples / "inventory.yml").read_text(),
                      (examples / "site.yml").read_text()]
