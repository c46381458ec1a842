"""Fact parsers on recorded command outputs."""

from __future__ import annotations

from pathlib import Path

from installer.facts import Facts, parse_dpkg_query, parse_group, parse_os_release, parse_passwd
from installer.runner import SubprocessRunner
from installer.target import Target

BOOKWORM = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""
TRIXIE_NO_CODENAME = """PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
VERSION_ID="13"
VERSION="13 (trixie)"
ID=debian
"""
NOBLE = """NAME="Ubuntu"
VERSION_ID="24.04"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
"""
DPKG = (
    "nginx\tii \t1.22.1-9+deb12u2\n"
    "php8.2-fpm\thi \t8.2.29-1~deb12u1\n"
    "mariadb-server\trc \t1:10.11.11-0+deb12u1\n"
    "libc6:amd64\tii \t2.36-9+deb12u10\n"
    "broken line\n"
    "redis-server\tiU \t5:7.0.15-1~deb12u4\n"
)


def test_os_release() -> None:
    assert str(parse_os_release(BOOKWORM)) == "debian 12 (bookworm)"
    assert parse_os_release(TRIXIE_NO_CODENAME).codename == "trixie"
    noble = parse_os_release(NOBLE)
    assert (noble.id, noble.version, noble.codename) == ("ubuntu", "24.04", "noble")


def test_dpkg_query_keeps_installed_only() -> None:
    assert parse_dpkg_query(DPKG) == {
        "nginx": "1.22.1-9+deb12u2",
        "php8.2-fpm": "8.2.29-1~deb12u1",
        "libc6": "2.36-9+deb12u10",
    }


def test_passwd_and_group() -> None:
    accounts = parse_passwd("root:x:0:0:root:/root:/bin/bash\nredis:x:104:107::/var/lib/redis:"
                            "/usr/sbin/nologin\nbad:line\n")
    assert accounts["redis"].uid == 104 and accounts["redis"].home == "/var/lib/redis"
    assert "bad" not in accounts
    assert parse_group("root:x:0:\nwww-data:x:33:\n") == {"root": 0, "www-data": 33}


def test_facts_read_the_root_tree(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text(TRIXIE_NO_CODENAME)
    (tmp_path / "etc/passwd").write_text("o1:x:1001:100::/data/disk/o1:/bin/bash\n")
    (tmp_path / "etc/group").write_text("users:x:100:\n")
    (tmp_path / "f").write_text("hello")
    (tmp_path / "l").symlink_to("/elsewhere")
    facts = Facts(Target(tmp_path), SubprocessRunner())
    assert facts.distro.codename == "trixie"
    assert facts.init_system == "none"
    assert facts.packages() == {}  # no dpkg database in this tree
    assert facts.user("o1") is not None and facts.user("nobody-here") is None
    assert facts.group_id("users") == 100
    f = facts.file("/f")
    assert (f.kind, f.sha256[:8]) == ("file", "2cf24dba")
    assert facts.file("/l").link == "/elsewhere"
    assert not facts.file("/missing").exists
    assert facts.cpus >= 1 and facts.ram_mib > 0
