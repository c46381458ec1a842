"""FTPS (the FTP xtra) end to end on a fresh box: Debian's pure-ftpd with TLS required, the
machine's certificate, the passive range in the firewall, logins only for the passwords
`octopus client passwd` set, each chrooted to its home, uploads PHP can read; real curl
(FTPS and plain FTP) and real HTTP through the site.

What an account's home shows is the access branch's (issue 15: bind mounts of the granted
sites, as OpenSSH's chroot needs too); here the test itself bind-mounts o1's site files
directory into /home/o1.ftp/site, standing in for that layout."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.box.boxes import Box
from tests.box.conftest import installed_box, octopus
from tests.box.test_install import summary

pytestmark = pytest.mark.box

CNF = '_XTRAS_LIST="FTP CSF"\n_MY_EMAIL="ops@example.org"\n'
# Without systemd the firewall is left out: on a fresh sysv box its fail2ban sshd jail finds
# no /var/log/auth.log yet and `fail2ban-client --test` fails (the firewall's own issue,
# reported; pure-ftpd itself is tested the same on both).
SYSV_CNF = '_XTRAS_LIST="FTP"\n_MY_EMAIL="ops@example.org"\n'
SITES = {"o1": "one.example.org", "o2": "two.example.org"}
PASSWORD = "Tenant-FTPS-pass-0001"
O2_PASSWORD = "Other-tenant-pass-0002"
INDEX_PHP = r"""<?php
header('Content-Type: text/plain');
if (isset($_GET['read'])) {
    $data = @file_get_contents($_GET['read']);
    echo $data === false ? "DENIED" : "READ:" . $data;
    exit;
}
echo "site=" . $_SERVER['HTTP_HOST'] . "\n";
"""
FILES = "/data/disk/o1/platforms/web/sites/one.example.org/files"
MOUNT = "/home/o1.ftp/site"
PASSWD = "/etc/pure-ftpd/pureftpd.passwd"


@pytest.fixture(scope="module")
def box(box_prereqs: None, box_variant: str, request: pytest.FixtureRequest) -> Iterator[Box]:
    kind, _, release = box_variant.partition("-")
    cnf = CNF if kind == "systemd" else SYSV_CNF
    with installed_box(request.config, kind=kind, release=release, cnf=cnf) as installed:
        for name, domain in SITES.items():
            installed.write_file(f"/root/platform-{name}/index.php", INDEX_PHP)
            octopus(installed, "install", name, "--yes")
            octopus(installed, "platform", "add", name, "web", "--path",
                    f"/root/platform-{name}", "--yes")
            octopus(installed, "site", "add", name, domain, "--platform", "web", "--yes")
        # o1's pool was sized for one instance: settle it now there are two.
        octopus(installed, "up-stable", "all", "--yes")
        installed.write_file("/root/o1.pw", PASSWORD + "\n", 0o600)
        installed.run(["mkdir", "-p", MOUNT])
        installed.run(["mount", "--bind", FILES, MOUNT])
        try:
            yield installed
        finally:
            installed.run(["umount", MOUNT], check=False)


def curl(box: Box, *args: str, user: str = "o1.ftp", password: str = PASSWORD,
         tls: bool = True) -> tuple[int, str, str]:
    """(rc, stdout, stderr) of curl on the box's own FTP server, verbose."""
    argv = ["curl", "-sS", "-v", "--max-time", "30", "--user", f"{user}:{password}"]
    if tls:
        argv += ["--ssl-reqd", "-k"]
    result = box.run([*argv, *args], check=False, timeout=60)
    return result.returncode, result.stdout, result.stderr


def fingerprint(text: str) -> str:
    found = re.search(r"Fingerprint=([0-9A-F:]+)", text)
    assert found, text
    return found.group(1)


@pytest.fixture(scope="module")
def passwords(box: Box) -> None:
    out = octopus(box, "client", "passwd", "o1", "ftp", "--password-file", "/root/o1.pw",
                  "--yes")
    assert PASSWORD not in out.stdout + out.stderr
    # From standard input (a script's way), for the second instance.
    out = box.run(["octopus", "client", "passwd", "o2", "ftp", "--yes"],
                  input=O2_PASSWORD + "\n")
    assert O2_PASSWORD not in out.stdout + out.stderr


def test_server_requires_tls_with_the_machines_certificate(box: Box) -> None:
    assert box.host.service("pure-ftpd").is_running
    assert box.read_file("/etc/pure-ftpd/conf/TLS").strip().endswith("3")
    options = box.run(["pure-ftpd-wrapper", "--show-options"]).stdout
    for option in ("-Y 3", "-p 30000:50000", "-A", "-E", "-l puredb:/etc/pure-ftpd/pureftpd.pdb"):
        assert option in options, options
    assert "-l pam" not in options and "-l unix" not in options, options
    shown = box.run("openssl s_client -starttls ftp -connect 127.0.0.1:21 </dev/null "
                    "2>/dev/null | openssl x509 -noout -fingerprint -sha256").stdout
    machine = box.run(["openssl", "x509", "-in", "/etc/ssl/certs/barracuda-wildcard.crt",
                       "-noout", "-fingerprint", "-sha256"]).stdout
    assert fingerprint(shown) == fingerprint(machine)
    bundle = box.host.file("/etc/ssl/private/pure-ftpd.pem")
    assert (bundle.user, bundle.mode) == ("root", 0o600)


def test_passive_range_is_open_in_the_firewall(box: Box, box_variant: str) -> None:
    if not box_variant.startswith("systemd"):
        pytest.skip("the firewall is not installed on the sysv box (see SYSV_CNF)")
    ruleset = box.run(["nft", "list", "table", "inet", "barracuda"]).stdout
    assert re.search(r"tcp dport 30000-50000 accept", ruleset), ruleset


def test_upload_and_download_over_ftps(box: Box, passwords: None) -> None:
    box.write_file("/root/hello.txt", "hello from o1.ftp\n")
    rc, _, err = curl(box, "-T", "/root/hello.txt", "ftp://127.0.0.1/site/hello.txt")
    assert rc == 0, err
    # Passive data connection inside the configured range, protected (PROT P).
    ports = [int(p) for p in re.findall(r"\(\|\|\|(\d+)\|\)", err)]
    ports += [int(a) * 256 + int(b)
              for a, b in re.findall(r"< 227 .*\(\d+,\d+,\d+,\d+,(\d+),(\d+)\)", err)]
    assert ports and all(30000 <= p <= 50000 for p in ports), err
    assert "PROT P" in err, err
    rc, out, err = curl(box, "ftp://127.0.0.1/site/hello.txt")
    assert (rc, out) == (0, "hello from o1.ftp\n"), err
    rc, _, err = curl(box, "-T", "/root/hello.txt", "ftp://127.0.0.1/home.txt")
    assert rc == 0, err


def test_upload_lands_owned_so_the_sites_php_reads_it(box: Box, passwords: None) -> None:
    landed = box.host.file(f"{FILES}/hello.txt")
    assert (landed.user, landed.group, landed.mode) == ("o1.ftp", "o1", 0o660)
    home = box.host.file("/home/o1.ftp/home.txt")
    assert (home.user, home.group, home.mode) == ("o1.ftp", "o1", 0o660)
    # Nginx (in group o1) serves it, and the instance's PHP (o1.web) reads it.
    got = box.run(["curl", "-s", "-H", "Host: one.example.org",
                   "http://127.0.0.1/sites/one.example.org/files/hello.txt"]).stdout
    assert got == "hello from o1.ftp\n"
    got = box.run(["curl", "-s", "-H", "Host: one.example.org",
                   f"http://127.0.0.1/?read={FILES}/hello.txt"]).stdout
    assert got == "READ:hello from o1.ftp\n"


def test_plain_ftp_login_is_refused(box: Box, passwords: None) -> None:
    rc, _, err = curl(box, "ftp://127.0.0.1/site/", tls=False)
    assert rc != 0, err
    assert re.search(r"< [45]\d\d ", err), err
    assert "< 230" not in err, err


def test_wrong_password_root_and_system_users_are_refused(box: Box, passwords: None) -> None:
    for user, password in (("o1.ftp", "Not-the-password-1"), ("root", PASSWORD),
                           ("o1.web", PASSWORD), ("o1", PASSWORD), ("www-data", PASSWORD),
                           ("o2.ftp", PASSWORD)):
        rc, _, err = curl(box, "ftp://127.0.0.1/", user=user, password=password)
        assert rc == 67, (user, err)  # curl: the login was denied
        assert "< 230" not in err, (user, err)


def test_the_chroot_holds(box: Box, passwords: None) -> None:
    rc, out, err = curl(box, "--list-only", "ftp://127.0.0.1/")
    assert rc == 0, err
    assert sorted(set(out.split()) - {".", ".."}) == ["home.txt", "site"], out
    # What is outside the home cannot be reached by path ...
    for path in ("/data/disk/o2/", "/data/disk/o1/secrets/", "/data/disk/o1/config/",
                 "/../../data/disk/o2/", "/etc/"):
        rc, out, err = curl(box, "--list-only", f"ftp://127.0.0.1/{path}")
        assert rc != 0 and out == "", (path, out, err)
    # ... nor through a symlink a tenant left in its home (made here as a tenant could
    # with SFTP): the plain chroot follows none out of it.
    for link, to in (("o2", "/data/disk/o2"), ("etc", "/etc"),
                     ("config", "/data/disk/o1/config")):
        box.run(["ln", "-sfn", to, f"/home/o1.ftp/{link}"])
    try:
        for link in ("o2/", "etc/", "config/"):
            rc, out, err = curl(box, "--list-only", f"ftp://127.0.0.1/{link}")
            assert rc != 0 and out == "", (link, out, err)
        rc, out, _ = curl(box, "ftp://127.0.0.1/etc/passwd")
        assert rc != 0 and "root:" not in out
        rc, out, _ = curl(box, "ftp://127.0.0.1/config/ftp.yml")
        assert rc != 0 and "$y$" not in out
    finally:
        box.run(["rm", "-f", "/home/o1.ftp/o2", "/home/o1.ftp/etc", "/home/o1.ftp/config"])
    # o2's own login sees its own home, not o1's upload.
    rc, out, err = curl(box, "--list-only", "ftp://127.0.0.1/", user="o2.ftp",
                        password=O2_PASSWORD)
    assert rc == 0 and "home.txt" not in out and "site" not in out, (out, err)


def test_passwords_live_only_as_hashes(box: Box, passwords: None) -> None:
    record = box.host.file("/data/disk/o1/config/ftp.yml")
    assert (record.user, record.mode) == ("root", 0o600)
    assert re.fullmatch(r"o1\.ftp: \$y\$\S+\n", record.content_string), record.content_string
    passwd = box.host.file(PASSWD)
    assert (passwd.user, passwd.mode) == ("root", 0o600)
    lines = passwd.content_string.splitlines()
    assert [line.split(":")[0] for line in lines] == ["o1.ftp", "o2.ftp"]
    assert lines[0].split(":")[5] == "/home/o1.ftp/./"
    leaks = box.run(["grep", "-rlF", PASSWORD, "/var/log", "/etc", "/data", "/root",
                     "--exclude=o1.pw", "--exclude-dir=barracuda"], check=False)
    assert leaks.stdout == "", leaks.stdout
    # Not a system password: /etc/shadow has none for the account.
    shadow = box.run(["getent", "shadow", "o1.ftp"]).stdout.split(":")
    assert shadow[1] in ("!", "*", "!*", "!!"), shadow[1]


def test_bad_passwd_requests_change_nothing(box: Box, passwords: None) -> None:
    before = box.run(["sha256sum", PASSWD, "/etc/pure-ftpd/pureftpd.pdb",
                      "/data/disk/o1/config/ftp.yml"]).stdout
    box.write_file("/root/short.pw", "short\n", 0o600)
    cases = [
        (["o1", "bob", "--password-file", "/root/o1.pw"], "no account o1.bob"),
        (["o1", "web", "--password-file", "/root/o1.pw"], "not a client's account"),
        (["o1", "../x", "--password-file", "/root/o1.pw"], "bad account"),
        (["o9", "ftp", "--password-file", "/root/o1.pw"], "unknown instance"),
        (["o1", "ftp", "--password-file", "/root/short.pw"], "expected 12 to 128"),
        (["o1", "ftp", "--password-file", "/root/none.pw"], "no such file"),
    ]
    for args, says in cases:
        result = box.run(["octopus", "client", "passwd", *args, "--yes"], check=False)
        assert result.returncode != 0, args
        assert says in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert box.run(["sha256sum", PASSWD, "/etc/pure-ftpd/pureftpd.pdb",
                    "/data/disk/o1/config/ftp.yml"]).stdout == before


def test_a_new_password_replaces_the_old_one(box: Box, passwords: None) -> None:
    box.write_file("/root/new.pw", "A-new-password-0003\n", 0o600)
    octopus(box, "client", "passwd", "o1", "ftp", "--password-file", "/root/new.pw", "--yes")
    rc, _, err = curl(box, "ftp://127.0.0.1/", password="A-new-password-0003")
    assert rc == 0, err
    assert curl(box, "ftp://127.0.0.1/")[0] == 67
    octopus(box, "client", "passwd", "o1", "ftp", "--password-file", "/root/o1.pw", "--yes")
    assert curl(box, "ftp://127.0.0.1/")[0] == 0


def test_a_second_install_changes_nothing(box: Box, passwords: None) -> None:
    for argv in (["barracuda", "install", "--yes"], ["octopus", "up-stable", "all", "--yes"]):
        result = box.run(argv)
        out = result.stdout + result.stderr
        summary(out)
        counts = re.findall(r"^(\d+) changed, ", out, re.M)
        assert counts and set(counts) == {"0"}, out[-2000:]


def test_removing_an_instance_takes_its_logins(box: Box, passwords: None) -> None:
    octopus(box, "install", "o3", "--yes")
    box.run(["octopus", "client", "passwd", "o3", "ftp", "--yes"], input=PASSWORD + "\n")
    assert "o3.ftp:" in box.read_file(PASSWD)
    assert curl(box, "--list-only", "ftp://127.0.0.1/", user="o3.ftp")[0] == 0
    octopus(box, "remove", "o3", "--yes")
    assert "o3.ftp:" not in box.read_file(PASSWD)
    assert curl(box, "ftp://127.0.0.1/", user="o3.ftp")[0] == 67
    assert curl(box, "ftp://127.0.0.1/")[0] == 0  # the others keep theirs
