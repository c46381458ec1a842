"""Tenant access end to end (issue 15 without FTPS, and sshd on _SSH_PORT of issue 16), with
the real OpenSSH client of the box against the sshd barracuda configured.

Debian 12 (systemd-bookworm), _SSH_PORT=2222: instance o1 with a Drupal 7.101 site installed
by `octopus site add --install`, and a second site on the same platform (whose code the
instance's user keeps in git); instance o2 with a site of its own. o1.ftp, o2.ftp and o1's
client acme (granted o1's first site only) log in with keys. Proven:
* sshd listens on 2222 (and not on 22); a password is refused even when it is right;
* o1.ftp lands in the limited shell, runs `drush @SITE status` (the site bootstraps, its
  database connected) and `git status` on the platform;
* every attempt of the escape corpus below is refused (exit 126), logged in the journal,
  and leaves no trace of what it tried to run;
* acme writes and reads its site's files over SFTP (and Nginx serves the upload), runs Drush
  on its site only, and cannot list the other site's directory, /data/disk/o2, o1's config,
  records, or any credentials file;
* o1's and o2's accounts cannot reach each other, over SFTP or the shell;
* a removed key and a revoked grant take effect at once (the very next login / transfer);
* `octopus status` lists the accounts, key fingerprints and grants; a second converge of
  the instance has nothing left to do."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.box.boxes import Box
from tests.box.conftest import installed_box, octopus
from tests.box.fixtures import fixture_tree

PORT = 2222
SITE = "one.example.org"
OTHER = "other.example.org"  # o1's second site, not granted to acme
O2_SITE = "two.example.org"
PLATFORM = "/data/disk/o1/platforms/d7"
FILES = f"{PLATFORM}/sites/{SITE}/files"
SSH_OPTS = ["-p", str(PORT), "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20"]

# The escape corpus: each line is sent to o1.ftp's limited shell with `ssh ... LINE`. Each
# must be refused; none may create /tmp/pwned* or anything in o1.ftp's home.
ESCAPES = [
    "sudo -i",
    "sudo /usr/local/sbin/octopus-drush one.example.org status",
    "ssh -p 2222 o2.ftp@127.0.0.1",
    "bash",
    "/bin/sh -c id",
    "sh -c 'touch /tmp/pwned-sh'",
    "ls; touch /tmp/pwned-semicolon",
    "ls && touch /tmp/pwned-and",
    "ls | sh",
    "echo $(touch /tmp/pwned-subst)",
    "ls `touch /tmp/pwned-backtick`",
    "ls > /tmp/pwned-redirect",
    "vim",
    "vi -c ':!touch /tmp/pwned-vim'",
    "less /etc/passwd",
    "git -c core.sshCommand='touch /tmp/pwned-gitssh' fetch origin",
    "git -c core.pager='touch /tmp/pwned-pager' log",
    "git --exec-path=/tmp status",
    "git clone ext::sh",
    "PATH=/tmp ls",
    "LD_PRELOAD=/tmp/evil.so ls",
    "env touch /tmp/pwned-env",
    "export PATH=/tmp",
    "find . -exec touch /tmp/pwned-find +",
    "rsync -e 'touch /tmp/pwned-rsync' a b:c",
    "tar -cf /tmp/x.tar . --checkpoint=1 --checkpoint-action=exec=id",
    "cat /etc/shadow",
    "cat ../../etc/passwd",
    "cat passwd-link",  # a symbolic link to /etc/passwd the account made over SFTP
    "cd /",
    "ls /data/disk/o2",
    "cat /data/disk/o1/config/sites/one.example.org.yml",
    "python3 -c 'import os'",
    "php -r 'echo 1;'",
    "drush @two.example.org status",
    "drush @one.example.org php-eval 'echo 1;'",
]


def ssh(box: Box, user: str, key: str, command: str | None = None, *,
        stdin: str | None = None, extra: tuple[str, ...] = ()
        ) -> subprocess.CompletedProcess[str]:
    argv = ["ssh", *SSH_OPTS, *extra, "-i", f"/root/keys/{key}", f"{user}@127.0.0.1"]
    if command is not None:
        argv.append(command)
    return box.run(argv, check=False, input=stdin, timeout=180)


def sftp(box: Box, user: str, key: str, batch: str) -> subprocess.CompletedProcess[str]:
    box.write_file("/root/batch", batch)
    return box.run(["sftp", "-P", str(PORT), "-o", "StrictHostKeyChecking=no", "-o",
                    "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o",
                    "IdentitiesOnly=yes", "-i", f"/root/keys/{key}", "-b", "/root/batch",
                    f"{user}@127.0.0.1"], check=False, timeout=180)


@pytest.fixture(scope="module")
def abox(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[Box]:
    tree = fixture_tree("pressflow-7.101")
    with installed_box(request.config, cnf=f"_SSH_PORT={PORT}\n") as box:
        box.copy_in(tree, "/root/d7")
        box.run("apt-get install -y -q git sshpass >/dev/null")
        box.run(["sh", "-c", f"echo '127.0.0.1 {SITE} {OTHER} {O2_SITE}' >> /etc/hosts"])
        octopus(box, "install", "o1", "--email", "ops@example.org", "--yes")
        octopus(box, "platform", "add", "o1", "d7", "--path", "/root/d7", "--yes")
        added = octopus(box, "site", "add", "o1", SITE, "--platform", "d7", "--install",
                        "--yes", check=False)
        assert added.returncode == 0, added.stderr[-3000:]
        octopus(box, "site", "add", "o1", OTHER, "--platform", "d7", "--yes")
        # The instance's user keeps its platform's code in git (its FTP user may read it).
        box.run(["runuser", "-u", "o1", "--", "sh", "-c",
                 f"cd {PLATFORM} && git init -q -b main && git add index.php includes && "
                 "git -c user.name=o1 -c user.email=o1@example.org commit -q -m platform"])
        octopus(box, "install", "o2", "--email", "ops@example.org", "--yes")
        octopus(box, "platform", "add", "o2", "d7", "--path", "/root/d7", "--yes")
        octopus(box, "site", "add", "o2", O2_SITE, "--platform", "d7", "--yes")
        box.run("mkdir -p /root/keys && cd /root/keys && for k in ftp1 ftp2 acme; do "
                "ssh-keygen -q -t ed25519 -N '' -C $k@test -f $k; done")
        octopus(box, "key", "add", "o1", "/root/keys/ftp1.pub", "--yes")
        octopus(box, "key", "add", "o2", "/root/keys/ftp2.pub", "--yes")
        octopus(box, "client", "add", "o1", "acme", "--email", "acme@example.org", "--yes")
        octopus(box, "client", "grant", "o1", "acme", SITE, "--yes")
        octopus(box, "key", "add", "o1.acme", "/root/keys/acme.pub", "--yes")
        box.write_file("/root/up.txt", "uploaded by acme\n")
        yield box


def test_sshd_listens_on_ssh_port_only(abox: Box) -> None:
    ports = abox.run(["sshd", "-T"]).stdout.splitlines()
    assert [line for line in ports if line.startswith("port ")] == [f"port {PORT}"]
    listening = abox.run(["ss", "-Hltn"]).stdout
    assert f":{PORT} " in listening and ":22 " not in listening
    assert ssh(abox, "o1.ftp", "ftp1", "pwd").returncode == 0


def test_password_login_refused(abox: Box) -> None:
    abox.run("echo 'o1.acme:Correct-Horse-9' | chpasswd")
    try:
        tried = abox.run(["sshpass", "-p", "Correct-Horse-9", "ssh", "-p", str(PORT),
                          "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                          "-o", "PubkeyAuthentication=no", "-o", "ConnectTimeout=20",
                          "-o", "PreferredAuthentications=password,keyboard-interactive",
                          "o1.acme@127.0.0.1", "pwd"], check=False, timeout=120)
        assert tried.returncode != 0
        assert "Permission denied (publickey)" in tried.stderr
    finally:
        abox.run(["passwd", "-l", "o1.acme"])


def test_ftp_user_shell_drush_and_git(abox: Box) -> None:
    helped = ssh(abox, "o1.ftp", "ftp1", "help")
    assert helped.returncode == 0 and "drush" in helped.stdout and "git" in helped.stdout
    status = ssh(abox, "o1.ftp", "ftp1", f"drush @{SITE} status")
    assert status.returncode == 0, status.stderr
    assert "Successful" in status.stdout and "Connected" in status.stdout
    assert "7.101" in status.stdout
    # An interactive session (no command): the lines come on stdin, as typed.
    session = ssh(abox, "o1.ftp", "ftp1", stdin=f"cd {PLATFORM}\ngit status\npwd\n")
    assert session.returncode == 0, session.stderr
    assert "On branch" in session.stdout and PLATFORM in session.stdout
    login = ssh(abox, "o1.ftp", "ftp1", f"drush @{SITE} uli")
    assert login.returncode == 0 and "/user/reset/" in login.stdout


def test_escape_corpus_refused_and_logged(abox: Box) -> None:
    assert len(ESCAPES) >= 20
    made = sftp(abox, "o1.ftp", "ftp1", "symlink /etc/passwd passwd-link\n")
    assert made.returncode == 0, made.stderr
    since = abox.run(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
    for line in ESCAPES:
        result = ssh(abox, "o1.ftp", "ftp1", line)
        assert result.returncode == 126, (line, result.returncode, result.stdout,
                                          result.stderr)
        assert "refused" in result.stderr, (line, result.stderr)
        assert "root:" not in result.stdout, line
    assert abox.run("ls /tmp/pwned* /tmp/x.tar 2>/dev/null | wc -l").stdout.strip() == "0"
    journal = abox.run(["journalctl", "-q", "-t", "octopus-shell", "--since", since,
                        "--no-pager"]).stdout
    refused = [line for line in journal.splitlines() if "o1.ftp refused" in line]
    assert len(refused) >= len(ESCAPES), journal[-3000:]


def test_client_sftp_own_site_only(abox: Box) -> None:
    put = sftp(abox, "o1.acme", "acme", f"put /root/up.txt {FILES}/up.txt\n"
                                         f"get {FILES}/up.txt /root/down.txt\n")
    assert put.returncode == 0, put.stderr
    assert abox.read_file("/root/down.txt") == "uploaded by acme\n"
    # Nginx (through the instance group) serves it: PHP's side may read it too.
    served = abox.run(["curl", "-s", "-H", f"Host: {SITE}",
                       f"http://127.0.0.1/sites/{SITE}/files/up.txt"]).stdout
    assert served == "uploaded by acme\n"
    for forbidden in (f"ls {PLATFORM}/sites/{OTHER}", f"ls {PLATFORM}/sites/{OTHER}/files",
                      "ls /data/disk/o2", "ls /data/disk/o2/platforms",
                      "ls /data/disk/o1/config", "ls /data/disk/o1/platforms",
                      f"get /data/disk/o1/config/sites/{SITE}.yml /root/x",
                      f"get /data/disk/o1/secrets/{SITE}.php /root/x",
                      f"get {PLATFORM}/sites/{SITE}/settings.php /root/x",
                      "get /data/disk/o1/.my.cnf /root/x",
                      "get /root/.o1.octopus.cnf /root/x",
                      "ls /home/o1.ftp", "get /data/disk/o2/platforms/d7/index.php /root/x"):
        result = sftp(abox, "o1.acme", "acme", forbidden + "\n")
        assert result.returncode != 0, forbidden
    shell = ssh(abox, "o1.acme", "acme", f"ls {PLATFORM}/sites/{OTHER}")
    assert shell.returncode == 126
    drush = ssh(abox, "o1.acme", "acme", f"drush @{SITE} status")
    assert drush.returncode == 0 and "Successful" in drush.stdout, drush.stderr
    assert ssh(abox, "o1.acme", "acme", f"drush @{OTHER} status").returncode == 126
    listed = ssh(abox, "o1.acme", "acme", f"ls {FILES}")
    assert listed.returncode == 0 and "up.txt" in listed.stdout
    # rsync from the client's side: the far end runs in the limited shell (rsync --server).
    rsh = "ssh " + " ".join(SSH_OPTS) + " -i /root/keys/acme"
    synced = abox.run(["rsync", "-a", "-e", rsh, "/root/up.txt",
                       f"o1.acme@127.0.0.1:{FILES}/synced.txt"], check=False, timeout=180)
    assert synced.returncode == 0, synced.stderr
    assert abox.read_file(f"{FILES}/synced.txt") == "uploaded by acme\n"
    outside = abox.run(["rsync", "-a", "-e", rsh, "/root/up.txt",
                        f"o1.acme@127.0.0.1:{PLATFORM}/sites/{OTHER}/files/x.txt"],
                       check=False, timeout=180)
    assert outside.returncode != 0


def test_instances_isolated_both_ways(abox: Box) -> None:
    for user, key, other in (("o1.ftp", "ftp1", "o2"), ("o2.ftp", "ftp2", "o1")):
        for path in (f"/data/disk/{other}/platforms", f"/data/disk/{other}/platforms/d7",
                     f"/home/{other}.ftp"):
            assert sftp(abox, user, key, f"ls {path}\n").returncode != 0, (user, path)
            assert ssh(abox, user, key, f"ls {path}").returncode == 126, (user, path)
    assert ssh(abox, "o2.ftp", "ftp2", f"drush @{SITE} status").returncode == 126
    assert ssh(abox, "o1.ftp", "ftp1", f"drush @{O2_SITE} status").returncode == 126
    # A key of one instance opens nothing of the other.
    assert ssh(abox, "o2.ftp", "ftp1", "pwd").returncode == 255
    assert ssh(abox, "o1.acme", "ftp2", "pwd").returncode == 255


def test_status_lists_accounts_and_converges_clean(abox: Box) -> None:
    text = octopus(abox, "status", "o1").stdout
    fingerprint = abox.run(["ssh-keygen", "-lf", "/root/keys/acme.pub"]).stdout.split()[1]
    assert "o1.acme" in text and fingerprint in text and SITE in text
    again = octopus(abox, "up-stable", "o1", "--check", check=False)
    assert again.returncode == 0, again.stdout + again.stderr


def test_key_removal_and_revoke_take_effect_at_once(abox: Box) -> None:
    octopus(abox, "key", "remove", "o1.acme", "/root/keys/acme.pub", "--yes")
    try:
        assert ssh(abox, "o1.acme", "acme", "pwd").returncode == 255
    finally:
        octopus(abox, "key", "add", "o1.acme", "/root/keys/acme.pub", "--yes")
    assert ssh(abox, "o1.acme", "acme", "pwd").returncode == 0
    octopus(abox, "client", "revoke", "o1", "acme", SITE, "--yes")
    try:
        assert sftp(abox, "o1.acme", "acme", f"get {FILES}/up.txt /root/x\n").returncode != 0
        assert ssh(abox, "o1.acme", "acme", f"drush @{SITE} status").returncode == 126
    finally:
        octopus(abox, "client", "grant", "o1", "acme", SITE, "--yes")
    assert sftp(abox, "o1.acme", "acme", f"get {FILES}/up.txt /root/x\n").returncode == 0


def test_sshd_follows_a_changed_ssh_port(abox: Box) -> None:
    """Last: the port moves (issue 16: the firewall opens _SSH_PORT, sshd listens on it)."""
    abox.run(["sed", "-i", "s/^_SSH_PORT=.*/_SSH_PORT=2200/", "/root/.barracuda.cnf"])
    installed = abox.run(["barracuda", "install", "--yes"], check=False, timeout=1800)
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert "port 2200" in abox.run(["sshd", "-T"]).stdout.splitlines()
    listening = abox.run(["ss", "-Hltn"]).stdout
    assert ":2200 " in listening and f":{PORT} " not in listening
    moved = abox.run(["ssh", "-p", "2200", *SSH_OPTS[2:], "-i", "/root/keys/ftp1",
                      "o1.ftp@127.0.0.1", "pwd"], check=False, timeout=120)
    assert moved.returncode == 0 and moved.stdout.strip() == "/home/o1.ftp", moved.stderr
