"""Tenant access logic (installer/octopus/access.py, shell.py, resources/acl.py,
stack/ssh.py): keys, names, grants, the limited shell's decisions on a real tree."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from installer.data import load_profile
from installer.errors import ConfigError
from installer.octopus import access
from installer.octopus.model import Instance, SiteRecord
from installer.octopus.shell import Refused, Session
from installer.resources.acl import Acl, parse_entries
from installer.stack import ssh

KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPbi+uG/A4qY6+2zVe2yHmUHR8qJ4rOSagl4X+Bdbfcm "
       "me@x")
FINGERPRINT = "SHA256:d65gi1zftMmf9nY8KD9yp+Sze8Xo3Sn6Z10H6NsX4IQ"  # ssh-keygen -lf


def test_key_fingerprint_is_ssh_keygens() -> None:
    key = access.parse_key(KEY + "\n", "k.pub")
    assert key.fingerprint == FINGERPRINT and key.comment == "me@x"
    assert key.line().startswith("restrict,pty ssh-ed25519 AAAA")


@pytest.mark.parametrize("text", [
    "", KEY + "\n" + KEY, "command=\"sh\" " + KEY, "ssh-ed25519 not-base64!",
    "ssh-rsa " + KEY.split()[1],  # an ed25519 blob named rsa
    "ssh-dss AAAAB3NzaC1kc3M=",
])
def test_bad_keys_are_one_line_errors(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        access.parse_key(text, "k.pub")
    assert "\n" not in str(raised.value) and "k.pub" in str(raised.value)


@pytest.mark.parametrize("name", ["ftp", "web", "Acme", "1x", "a.b", "a" * 17, "a-b"])
def test_bad_client_names(name: str) -> None:
    with pytest.raises(ConfigError):
        access.check_client_name(name)


def site(domain: str, platform: str = "d7") -> SiteRecord:
    return SiteRecord(domain, platform, "db", "u", "p")


def test_grants_open_one_site_and_close_the_others() -> None:
    o1 = Instance("o1")
    sites = [site("a.test"), site("b.test"), site("c.test", "other")]
    wanted = {(r.path, r.perms, r.tree) for r in access.grants(o1, sites, "o1.acme", ["a.test"])
              if isinstance(r, Acl)}
    top = "/data/disk/o1/platforms"
    assert (top, "--x", False) in wanted
    assert (f"{top}/d7/sites", "--x", False) in wanted
    assert (f"{top}/d7/sites/a.test", "r-x", False) in wanted
    assert (f"{top}/d7/sites/a.test/files", "rwx", True) in wanted
    assert (f"{top}/d7/sites/b.test", "", False) in wanted
    assert (f"{top}/d7/sites/b.test/files", "", True) in wanted
    assert (f"{top}/other", "", False) in wanted  # no site of its on that platform
    closed = {r.perms for r in access.grants(o1, sites, "o1.acme", []) if isinstance(r, Acl)}
    assert closed == {""}


def test_commands_change_records() -> None:
    o1 = Instance("o1")
    state = access.AccessState([access.AccessRecord("o1.acme", access.CLIENT)])
    granted = access.client_grant(o1, "acme", "a.test", [site("a.test")], True)(state)
    assert granted.record("o1.acme").sites == ("a.test",)  # type: ignore[union-attr]
    with pytest.raises(ConfigError):
        access.client_grant(o1, "acme", "nope.test", [site("a.test")], True)
    key = access.parse_key(KEY, "k")
    keyed = access.key_add(o1, "o1", key)(granted)
    assert keyed.record("o1.ftp").key_list == [key]  # type: ignore[union-attr]
    assert access.key_add(o1, "o1", key)(keyed) == keyed  # adding twice changes nothing
    removed = access.key_remove(o1, "o1.ftp", FINGERPRINT)(keyed)
    assert removed.record("o1.ftp").keys == ()  # type: ignore[union-attr]
    with pytest.raises(ConfigError):
        access.key_remove(o1, "o1.ftp", FINGERPRINT)(removed)


def test_acl_entries_parsed() -> None:
    text = ("user::rwx\nuser:o1.acme:rwx\t#effective:r-x\ngroup::r-x\nmask::r-x\n"
            "default:user:o1.acme:rwx\ndefault:user:o1.acmex:r-x\n")
    assert parse_entries(text, "o1.acme") == ("rwx", "rwx")
    assert parse_entries(text, "o1.bob") == ("", "")


def test_sshd_dropin_and_gitconfig() -> None:
    text = ssh.sshd_config(2222)
    assert "Port 2222\n" in text and "Match Group octopus-access" in text
    assert "PasswordAuthentication no" in text and "AuthenticationMethods publickey" in text
    git = ssh.gitconfig()
    assert "[safe]\n\tdirectory = *\n" in git and '[protocol "https"]\n\tallow = always' in git


# --------------------------------------------------------------------------- the shell


@pytest.fixture
def session(tmp_path: Path) -> Session:
    home = tmp_path / "home"
    site_dir = tmp_path / "sites" / "a.test"
    other = tmp_path / "sites" / "b.test"
    for d in (home, site_dir / "files", other):
        d.mkdir(parents=True)
    (home / "note.txt").write_text("hi\n")
    (site_dir / "files" / "x.txt").write_text("x\n")
    os.symlink("/etc/passwd", home / "passwd-link")
    os.symlink(str(other), home / "other-link")
    account = {"account": "o1.acme", "instance": "o1", "kind": "client", "home": str(home),
               "roots": [str(home), str(site_dir)],
               "sites": {"a.test": {"root": "/r", "dir": str(site_dir), "uri": "https://a"}}}
    json.dumps(account)
    return Session("o1.acme", account, load_profile("access"))


ALLOWED = ["ls", "ls -la note.txt", "cat note.txt", "cat ~/note.txt", "ls *.txt",
           "git status", "git log --oneline -5", "rsync -av note.txt copy.txt",
           "grep -r hi .", "tar -czf a.tgz note.txt", "find . -name '*.txt'",
           "rsync --server -vlogDtpre.iLsfxCIvu . files"]


@pytest.mark.parametrize("line", ALLOWED)
def test_shell_allows(session: Session, line: str) -> None:
    words = session.words(line)
    if words[0] in session.shell["commands"] and not os.access(
            session.shell["commands"][words[0]]["program"], os.X_OK):
        pytest.skip(f"{words[0]} is not installed here")
    argv = session.command(words)
    assert argv[0].startswith("/")


REFUSED = ["sudo -i", "ssh o2.ftp@localhost", "bash", "/bin/sh", "ls; id", "ls && id",
           "ls | sh", "echo $(id)", "ls `id`", "ls > x", "vim", "vi", "less note.txt",
           "git -c core.sshCommand=sh fetch", "git --exec-path=/tmp status",
           "git clone ext::sh", "git config core.pager sh", "PATH=/tmp ls", "env ls",
           "find . -exec id +", "rsync -avze sh a b", "rsync -e sh a b", "rsync a host:b",
           "tar -cf x.tar . --to-command=sh", "cat /etc/passwd", "cat ../../../etc/passwd",
           "cat passwd-link", "ls other-link", "ls ~root", "cat note.txt\nid",
           "git log --output=/tmp/x", "git grep -Osh x", "composer exec sh",
           "python3", "php -r 1", "rsync --server --daemon .",
           "rsync --server --config=rsyncd.conf --daemon ."]


@pytest.mark.parametrize("line", REFUSED)
def test_shell_refuses(session: Session, line: str) -> None:
    with pytest.raises(Refused):
        words = session.words(line)
        if words[0] == "drush":
            session.drush(words[1:])
        else:
            session.command(words)


def test_shell_cd_and_drush(session: Session, tmp_path: Path) -> None:
    assert session.cd([str(tmp_path / "sites" / "a.test")]) == 0
    with pytest.raises(Refused):
        session.cd(["/"])
    with pytest.raises(Refused):
        session.cd([str(tmp_path / "sites" / "b.test")])
    argv = session.drush(["@a.test", "uli"])
    assert argv == ["/usr/bin/sudo", "-n", "/usr/local/sbin/octopus-drush", "a.test",
                    "user-login"]
    for bad in (["@b.test", "status"], ["@a.test", "php-eval"], ["status"],
                ["@a.test", "status", "--root=/"]):
        with pytest.raises(Refused):
            session.drush(bad)
    env = session.environment()
    assert env["GIT_CONFIG_GLOBAL"] == "/etc/barracuda/access/gitconfig"
    assert "LD_PRELOAD" not in env and env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
