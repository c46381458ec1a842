"""FTPS without a box: pure-ftpd's directives from the profiles, the certificate bundle and
the logins database resources, password hashing and rules, the accounts that may get a
login, the logins file, and `octopus client passwd` / `octopus remove` under --root."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
import yaml

from installer.cli.octopus_ftp import read_password
from installer.config import Config
from installer.config.cnf import parse_text
from installer.config.schema import validate
from installer.data import load_profile
from installer.errors import ConfigError, UsageError
from installer.facts import Account, Facts
from installer.octopus import ftp_password
from installer.octopus.model import Instance
from installer.stack import ftp
from installer.stack.context import StackContext
from installer.target import Target
from tests.cli.test_cli import run
from tests.fakes import FakeRunner, FakeServices, make_ctx

PROFILE = load_profile("ftp")
PASSWORD = "Correct-horse-battery-9"


def cfg(text: str) -> Config:
    return validate(parse_text(text, "/root/.barracuda.cnf"))


# --------------------------------------------------------------------------- the server


def test_directives_require_tls_chroot_and_only_the_logins_database() -> None:
    conf = ftp.directives()
    assert conf["TLS"] == "3"  # login and data
    assert conf["ChrootEveryone"] == "yes"
    assert conf["NoAnonymous"] == "yes"
    assert (conf["PAMAuthentication"], conf["UnixAuthentication"]) == ("no", "no")
    assert conf["PureDB"] == PROFILE["puredb"]
    assert conf["Umask"] == "117 007"  # 0660 files, 0770 directories: the group reads
    low, high = load_profile("firewall")["ftp"]["passive"]
    assert conf["PassivePortRange"] == f"{low} {high}"  # the firewall's range, one place
    assert "VIRTUALCHROOT=false" in ftp.defaults_text()
    assert "STANDALONE_OR_INETD=standalone" in ftp.defaults_text()


def test_the_server_is_built_only_with_ftp_in_xtras() -> None:
    stack = cast(StackContext, SimpleNamespace(
        release=SimpleNamespace(codename="bookworm"),
        paths={"ssl_wildcard_cert": "/c.crt", "ssl_wildcard_key": "/c.key"}))
    assert ftp.build_components(cfg('_XTRAS_LIST="CSF"\n'), stack) == []
    [component] = ftp.build_components(cfg('_XTRAS_LIST="FTP"\n'), stack)
    ids = [r.id for r in component.resources]
    assert "file:/etc/pure-ftpd/conf/TLS" in ids and "service:pure-ftpd" in ids
    assert "link:/etc/pure-ftpd/auth/50pure" in ids
    assert f"bundle:{PROFILE['certificate']}" in ids
    assert [v.argv for v in component.validators] == [["pure-ftpd-wrapper", "--show-options"]]


def test_certificate_bundle_follows_the_machines_certificate(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, FakeRunner(), FakeServices())
    (tmp_path / "c.key").write_text("KEY\n")
    (tmp_path / "c.crt").write_text("CERT\n")
    bundle = ftp.CertificateBundle("/ssl/ftp.pem", "/c.key", "/c.crt")
    assert [c.action for c in bundle.check(ctx)] == ["create"]
    bundle.apply(ctx, bundle.check(ctx))
    written = tmp_path / "ssl/ftp.pem"
    assert written.read_text() == "KEY\nCERT\n"
    assert written.stat().st_mode & 0o777 == 0o600
    assert bundle.check(ctx) == []
    (tmp_path / "c.crt").write_text("RENEWED\n")
    assert [c.action for c in bundle.check(ctx)] == ["update"]
    (tmp_path / "c.crt").unlink()
    assert "not made yet" in bundle.check(ctx)[0].reason


def test_puredb_is_built_when_the_logins_file_changed(tmp_path: Path) -> None:
    runner = FakeRunner()
    ctx = make_ctx(tmp_path, runner, FakeServices())

    db = ftp.PureDb("/etc/p.passwd", "/etc/p.pdb", "/var/lib/p.sha256")
    assert [c.action for c in db.check(ctx)] == ["build"]
    db.apply(ctx, db.check(ctx))
    assert (tmp_path / "etc/p.passwd").read_text() == ""  # no login yet: an empty file
    # ... recorded as ours, so the logins file of octopus replaces it without a .orig copy.
    assert ctx.state.get("/etc/p.passwd") == hashlib.sha256(b"").hexdigest()
    assert runner.calls[-1] == ["pure-pw", "mkdb", "/etc/p.pdb", "-f", "/etc/p.passwd"]
    (tmp_path / "etc/p.pdb").write_bytes(b"PDB")
    assert db.check(ctx) == []
    (tmp_path / "etc/p.passwd").write_text("o1.ftp:x\n")
    assert [c.action for c in db.check(ctx)] == ["build"]
    assert db.paths(ctx) == ["/etc/p.passwd", "/etc/p.pdb", "/var/lib/p.sha256"]


# --------------------------------------------------------------------------- passwords


def test_hash_is_yescrypt_salted_and_verifies() -> None:
    one, two = ftp_password.hash_password(PASSWORD), ftp_password.hash_password(PASSWORD)
    assert one.startswith("$y$") and two.startswith("$y$") and one != two
    assert ftp_password.verify(PASSWORD, one) and ftp_password.verify(PASSWORD, two)
    assert not ftp_password.verify(PASSWORD + "x", one)
    assert ftp_password.HASH.fullmatch(one)


@pytest.mark.parametrize("password,says", [
    ("short", "has 5 characters: expected 12 to 128"),
    ("x" * 129, "has 129 characters"),
    ("twelve-chars\tand-a-tab", "control character"),
    ("line\nbreak-inside", "control character"),
])
def test_bad_passwords(password: str, says: str) -> None:
    with pytest.raises(UsageError, match=says) as error:
        ftp_password.check_password(password)
    assert password not in str(error.value)


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pw"
    secret.write_text(f"{PASSWORD}\r\nignored\n")
    assert read_password(secret, "p") == PASSWORD
    with pytest.raises(UsageError, match="no such file"):
        read_password(tmp_path / "none", "p")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(UsageError, match="no password on the first line"):
        read_password(tmp_path / "empty", "p")
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
    assert read_password(Path("-"), "p") == PASSWORD
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
    assert read_password(None, "p") == PASSWORD  # not a terminal: one line of stdin


# --------------------------------------------------------------------------- accounts


class Users:
    """Facts with a passwd of our own, instances o1 and o1.x under a --root tree."""

    def __init__(self, root: Path, accounts: dict[str, Account]) -> None:
        self.target = Target(root)
        self.accounts = accounts
        for name in ("o1", "o1.x"):
            (root / "data/disk" / name).mkdir(parents=True, exist_ok=True)
            (root / "root").mkdir(exist_ok=True)
            (root / f"root/.{name}.octopus.cnf").write_text("")

    def user(self, name: str) -> Account | None:
        return self.accounts.get(name)


def account(name: str, uid: int = 120, home: str = "") -> Account:
    return Account(name, uid, 130, home or f"/home/{name}", "/bin/bash")


def users(tmp_path: Path, *names: Account) -> Facts:
    return cast(Facts, Users(tmp_path, {a.name: a for a in names}))


def test_accounts_that_may_get_a_login(tmp_path: Path) -> None:
    facts = users(tmp_path, account("o1.ftp"), account("o1.bob"), account("o1.web"),
                  account("o1.x"), account("o1.root", uid=0), account("o1.top", home="/"))
    o1 = Instance("o1")
    assert ftp_password.account_name(facts, o1, "ftp") == "o1.ftp"
    assert ftp_password.account_name(facts, o1, "bob") == "o1.bob"
    with pytest.raises(ConfigError, match=r"no account o1\.eve"):
        ftp_password.account_name(facts, o1, "eve")
    for own in ("web", "x"):  # o1's PHP user; instance o1.x's own user
        with pytest.raises(UsageError, match="not a client's account"):
            ftp_password.account_name(facts, o1, own)
    with pytest.raises(ConfigError, match="root's uid"):
        ftp_password.account_name(facts, o1, "root")
    with pytest.raises(ConfigError, match="it can be chrooted to"):
        ftp_password.account_name(facts, o1, "top")
    for bad in ("../x", "Bob", "b.c", "", "-x", "a b"):
        with pytest.raises(UsageError, match="bad account"):
            ftp_password.check_account_arg("o1", bad)


def test_logins_file_has_existing_accounts_chrooted_to_their_homes(tmp_path: Path) -> None:
    facts = users(tmp_path, account("o1.ftp", 120), account("o2.ftp", 121),
                  account("o2.bad", 0), account("o2.odd", 122, "/home/a:b"))
    text = ftp_password.passwd_text(facts, {
        "o2": {"o2.ftp": "$y$B", "o2.gone": "$y$C", "o2.bad": "$y$D", "o2.odd": "$y$E"},
        "o1": {"o1.ftp": "$y$A"}})
    lines = text.splitlines()
    assert lines == ["o1.ftp:$y$A:120:130::/home/o1.ftp/./::::::::::::",
                     "o2.ftp:$y$B:121:130::/home/o2.ftp/./::::::::::::"]
    assert all(line.count(":") == ftp_password.PASSWD_FIELDS - 1 for line in lines)


def test_a_broken_record_is_an_error_naming_it(tmp_path: Path) -> None:
    record = tmp_path / "data/disk/o1/config/ftp.yml"
    record.parent.mkdir(parents=True)
    for text in ("o1.ftp: plain-password\n", "- a list\n", "o1.ftp: [\n"):
        record.write_text(text)
        with pytest.raises(ConfigError) as error:
            ftp_password.read_logins(Target(tmp_path), Instance("o1"))
        assert "ftp.yml" in str(error.value)
    record.write_text("o1.ftp: $y$abc\n")
    assert ftp_password.read_logins(Target(tmp_path), Instance("o1")) == {"o1.ftp": "$y$abc"}


# --------------------------------------------------------------------------- the commands


def test_client_passwd_and_remove_under_root(tmp_path: Path) -> None:
    root = str(tmp_path)
    (tmp_path / "root").mkdir()
    (tmp_path / "root/.barracuda.cnf").write_text('_XTRAS_LIST="FTP"\n')
    assert run("barracuda", "install", "--root", root, "--yes").returncode == 0
    assert run("octopus", "install", "o1", "--root", root, "--yes").returncode == 0
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    passwd = ["octopus", "client", "passwd", "o1", "ftp", "--root", root,
              "--password-file", str(secret), "--yes"]
    result = run(*passwd)  # the account is planned only under --root: not there yet
    assert result.returncode != 0 and "no account o1.ftp" in result.stderr
    (tmp_path / "etc").mkdir(exist_ok=True)
    with (tmp_path / "etc/passwd").open("a") as handle:
        handle.write("o1.ftp:x:150:150::/home/o1.ftp:/bin/bash\n")
    result = run(*passwd)
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    logs = "".join(p.read_text() for p in (tmp_path / "var/log/barracuda").glob("*.log"))
    assert PASSWORD not in logs
    record = yaml.safe_load((tmp_path / "data/disk/o1/config/ftp.yml").read_text())
    assert ftp_password.verify(PASSWORD, record["o1.ftp"])
    assert (tmp_path / "data/disk/o1/config/ftp.yml").stat().st_mode & 0o777 == 0o600
    line = (tmp_path / "etc/pure-ftpd/pureftpd.passwd").read_text()
    assert line == f"o1.ftp:{record['o1.ftp']}:150:150::/home/o1.ftp/./::::::::::::\n"
    result = run("octopus", "remove", "o1", "--root", root, "--yes")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "etc/pure-ftpd/pureftpd.passwd").read_text() == ""


def test_client_passwd_refuses_when_ftps_is_off(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert run("barracuda", "install", "--root", root, "--yes").returncode == 0
    assert run("octopus", "install", "o1", "--root", root, "--yes").returncode == 0
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    result = run("octopus", "client", "passwd", "o1", "ftp", "--root", root,
                 "--password-file", str(secret), "--yes")
    assert result.returncode != 0
    assert "FTPS is off: add FTP to _XTRAS_LIST" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data/disk/o1/config/ftp.yml").exists()
