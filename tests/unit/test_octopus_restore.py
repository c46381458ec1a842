"""octopus backup/restore: finding a site's pieces in an archive (real tar and zstd)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from installer.errors import ConfigError
from installer.octopus.sites.restore import _member, open_source
from installer.runner import SubprocessRunner

pytestmark = pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")


def test_member_maps_paths_under_the_packed_tree() -> None:
    site = "/data/disk/o1/platforms/web/sites/a.org"
    assert _member(site, site) == "tree"
    assert _member("/data/disk/o1", site) == "tree/platforms/web/sites/a.org"
    assert _member("/data/disk/o1/platforms", site) == "tree/web/sites/a.org"
    assert _member("/data/disk/o2", site) is None


def make(tmp_path: Path, tree: str, layout: list[str]) -> Path:
    stage = tmp_path / "stage"
    (stage / "records").mkdir(parents=True)
    (stage / "records" / "a.org.yml").write_text("domain: a.org\ndb_password: secret\n")
    for rel in layout:
        (stage / rel).mkdir(parents=True, exist_ok=True)
    manifest = {
        "kind": "instance", "instance": "o1", "tree": tree, "created": "",
        "sites": [{"domain": "a.org", "platform": "web", "db_name": "o1_a_org",
                   "db_user": "o1_a_org", "aliases": ["www.a.org"], "php": "",
                   "certificate": "", "certificate_key": "", "extra": {}}],
        "platforms": [{"name": "web", "source": "/root/web", "via": "copy", "ref": "",
                       "kind": "plain"}],
        "databases": {},
    }
    (stage / "manifest.json").write_text(json.dumps(manifest))
    archive = tmp_path / "o1.tar.zst"
    subprocess.run(["tar", "--zstd", "-cf", str(archive), "-C", str(stage), "manifest.json",
                    "records", "tree"], check=True)
    return archive


def test_open_source_finds_the_site_and_the_platform_code(tmp_path: Path) -> None:
    archive = make(tmp_path, "/data/disk/o1/platforms", ["tree/web/sites/a.org/files"])
    source = open_source(SubprocessRunner(), archive, "www.a.org")
    assert source.site.domain == "a.org" and source.site.db_password == "secret"
    assert source.site_member == "tree/web/sites/a.org"
    assert source.platform_member == "tree/web"
    assert source.platform is not None and source.platform.source == "/root/web"
    assert source.dump is None


def test_open_source_of_a_site_archive_has_no_platform_code(tmp_path: Path) -> None:
    archive = make(tmp_path, "/data/disk/o1/platforms/web/sites/a.org", ["tree/files"])
    source = open_source(SubprocessRunner(), archive, "a.org")
    assert source.site_member == "tree" and source.platform_member is None


def test_open_source_refuses_what_is_not_there(tmp_path: Path) -> None:
    archive = make(tmp_path, "/data/disk/o1/platforms", ["tree/web/sites/a.org"])
    with pytest.raises(ConfigError, match=r"holds no site b\.org"):
        open_source(SubprocessRunner(), archive, "b.org")
    bogus = tmp_path / "bogus.tar.zst"
    bogus.write_text("not an archive")
    with pytest.raises(ConfigError, match="not an octopus archive"):
        open_source(SubprocessRunner(), bogus, "a.org")
    with pytest.raises(ConfigError, match="no such archive"):
        open_source(SubprocessRunner(), tmp_path / "none.tar.zst", "a.org")
    empty = make(tmp_path / "x", "/data/disk/o1/platforms", ["tree/web"])
    with pytest.raises(ConfigError, match=r"does not hold the files of a\.org"):
        open_source(SubprocessRunner(), empty, "a.org")
