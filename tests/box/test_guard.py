"""Guards between tenants and around the machine, on a fresh box of each init system
(issues 12 and 16):

* /proc is mounted with hidepid: a tenant's shell login and its PHP pool's user see their
  own processes only, never another tenant's (processes of o2's users are the target).
* The firewall's allow and deny lists, end to end through `barracuda firewall allow|deny`:
  a denied address is dropped, an allowed one is served and never banned.
* A site added after the firewall was installed is guarded at once: a login brute force
  against it is banned (fail2ban reads the new site's access log from `site add` on).
* A codebase placed with `platform add` that links another instance's files: never served.
* The ruleset is loaded at boot: after the kernel lost it (what a reboot does), the boot
  path (without systemd the rcS link of Debian's nftables init script, with it
  nftables.service) loads it.

Clients come from their own network namespaces (tests/box/test_firewall.py's Net)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.box.boxes import Box
from tests.box.conftest import installed_box, octopus
from tests.box.plugin import selected_variants
from tests.box.test_firewall import (
    IP,
    OVERRIDE,
    Client,
    Net,
    bans,
    cnf,
    converge,
    flood,
    host,
    http,
    probe,
    set_profile,
    status,
    until,
)

VARIANTS = [v for v in selected_variants() if v in ("sysv-bookworm", "systemd-bookworm")]
SITES = {"o1": "one.example.org", "o2": "two.example.org"}
INDEX_PHP = "<?php echo 'ok ' . $_SERVER['HTTP_HOST'];\n"


@pytest.fixture(scope="module", params=VARIANTS)
def box(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[Box]:
    kind, _, release = str(request.param).partition("-")
    with installed_box(request.config, kind=kind, release=release) as installed:
        # Short windows; bans of two minutes, lifted by the tests (a slow box must still
        # see a ban before it expires).
        set_profile(installed, {**OVERRIDE, "bantime_s": 120})
        yield installed


@pytest.fixture(scope="module")
def net(box: Box) -> Iterator[tuple[Client, Client]]:
    wiring = Net(box)
    try:
        a, b = wiring.client(1), wiring.client(2)
        converge(box, cnf(allow=""))
        # The instances and their sites come after the firewall.
        box.write_file("/root/platform/index.php", INDEX_PHP)
        for instance, domain in SITES.items():
            octopus(box, "install", instance, "--email", "ops@example.org", "--yes")
            octopus(box, "platform", "add", instance, "web", "--path", "/root/platform",
                    "--yes")
            octopus(box, "site", "add", instance, domain, "--platform", "web", "--type", "php",
                    "--yes")
        yield a, b
    finally:
        wiring.close()


def shell(box: Box, user: str, *argv: str) -> tuple[int, str]:
    result = box.run(["runuser", "-u", user, "--", *argv], check=False)
    return result.returncode, result.stdout + result.stderr


def site_status(client: Client, domain: str, path: str = "/", method: str = "GET") -> str:
    """The HTTP status of `method path` on `domain`, from the client's namespace."""
    out = host([IP, "netns", "exec", client.ns, "curl", "-s", "-o", "/dev/null", "-w",
                "%{http_code}", "--connect-timeout", "2", "-m", "5", "-X", method, "-H",
                f"Host: {domain}", f"http://{client.box_address}{path}"], check=False)
    return out.stdout.strip()


# -- issue 12: processes of other tenants are invisible ----------------------------------------

def test_a_tenant_sees_only_its_own_processes(box: Box, net: tuple[Client, Client]) -> None:
    mounts = box.read_file("/proc/self/mounts")
    assert any(line.split()[1] == "/proc" and "hidepid=invisible" in line
               for line in mounts.splitlines()), mounts
    proc_lines = [line for line in box.read_file("/etc/fstab").splitlines()
                  if line.split()[1:2] == ["/proc"]]
    assert proc_lines == ["proc /proc proc defaults,hidepid=invisible,gid=proc 0 0"]
    # o2 is at work: a process of its shell user and one of its PHP pool's user.
    for user in ("o2", "o2.web"):
        box.run(f"setsid runuser -u {user} -- sleep 3001 > /dev/null 2>&1 < /dev/null &")
    theirs = ["pgrep", "-u", "o2,o2.web", "-x", "sleep"]
    assert until(lambda: len(box.run(theirs, check=False).stdout.split()) == 2, 20)
    victims = box.run(theirs).stdout.split()
    root_sees = box.run(["ps", "-eo", "user:20"]).stdout.split()
    assert {"o2", "o2.web", "mysql"} <= set(root_sees)  # control: root sees everyone
    for user in ("o1", "o1.web"):  # o1's shell login and o1's PHP pool user
        code, out = shell(box, user, "ps", "-eo", "user:20,pid,args")
        assert code == 0, out
        assert {line.split()[0] for line in out.splitlines()[1:]} == {user}, out
        code, listing = shell(box, user, "ls", "/proc")
        assert code == 0 and not set(victims) & set(listing.split()), listing
        for pid in victims:
            for what in ("cmdline", "environ", "status"):
                code, out = shell(box, user, "cat", f"/proc/{pid}/{what}")
                assert code != 0 and "No such file" in out, (pid, what, out)
    box.run(["pkill", "-u", "o2,o2.web", "-x", "sleep"])
    # The services behind the sites still work with it, and a converge changes nothing.
    assert site_status(net[0], SITES["o1"]) == "200"
    again = box.run(["barracuda", "install", "--yes"])
    assert "\n0 changed, " in again.stderr, again.stderr[-2000:]


# -- issue 16: allow and deny lists, a new site guarded, the ruleset at boot ------------------

def test_a_denied_address_is_dropped_an_allowed_one_is_never_banned(
        box: Box, net: tuple[Client, Client]) -> None:
    a, b = net
    box.run(["barracuda", "firewall", "deny", b.address])
    assert status(box)["deny"] == [f"{b.address}/32"]
    assert http(b) is None and probe(b, 80) == "timeout"
    assert http(a) is not None  # control: another client is served
    box.run(["barracuda", "firewall", "allow", b.address])
    report = status(box)
    assert report["deny"] == [] and report["allow"] == [f"{b.address}/32"]
    assert http(b) is not None
    assert flood(b, 60) == 60  # three times the flood jail's threshold
    time.sleep(5)
    assert http(b) is not None and b.address not in bans(box)


def test_a_site_added_after_the_firewall_is_guarded_at_once(
        box: Box, net: tuple[Client, Client]) -> None:
    a, _ = net
    log = f"/var/log/nginx/{SITES['o2']}.access.log"
    watched = box.run(["fail2ban-client", "get", "barracuda-nginx-login", "logpath"]).stdout
    assert log in watched, watched
    for _ in range(15):  # the login jail bans at 10 POSTs a minute
        site_status(a, SITES["o2"], "/user/login", "POST")
    assert until(lambda: a.address in bans(box), 60), "the brute force was not banned"
    assert bans(box)[a.address]["jail"] == "barracuda-nginx-login"
    assert http(a, 2) is None
    box.run(["barracuda", "firewall", "unban", a.address])
    assert http(a) is not None


def test_the_ruleset_is_loaded_at_boot(box: Box, net: tuple[Client, Client]) -> None:
    a, _ = net
    if box.kind == "sysv":
        # Debian's orphan-sysvinit-scripts: nftables starts in runlevel S, which runs to its
        # end before runlevel 2 starts fail2ban, ssh and nginx.
        early = box.run("ls /etc/rcS.d").stdout.split()
        nft = [name for name in early if name.startswith("S") and name.endswith("nftables")]
        assert len(nft) == 1, early
        assert box.run("ls /etc/rc2.d/S*fail2ban", check=False).returncode == 0
        boot = [f"/etc/rcS.d/{nft[0]}", "start"]
    else:
        assert box.run(["systemctl", "is-enabled", "nftables"]).stdout.strip() == "enabled"
        boot = ["systemctl", "restart", "nftables"]
    # What a reboot does to the kernel's ruleset and to /run.
    box.run("nft delete table inet barracuda && rm -f /run/barracuda-nftables.loaded")
    assert probe(a, 3306) in ("open", "refused")  # nothing drops it now
    box.run(boot)
    assert probe(a, 3306) == "timeout"
    assert http(a) is not None


def test_a_crafted_codebase_cannot_serve_another_instances_files(
        box: Box, net: tuple[Client, Client]) -> None:
    """Issue 12, hole 1 by its third way in: a codebase placed with `platform add` that ships
    symbolic links to another instance's file and to the server's configuration."""
    secret = "/data/disk/o1/platforms/web/secret.txt"
    box.write_file(secret, "SECRET-OF-o1\n", 0o640)
    box.run(["chown", "o1:o1", secret])
    assert "SECRET-OF-o1" in fetch(box, SITES["o1"], "/secret.txt")[1]  # control: o1's own
    crafted = "/root/crafted"
    box.write_file(f"{crafted}/index.php", INDEX_PHP)
    box.run(["ln", "-s", secret, f"{crafted}/theirs.txt"])
    box.run(["ln", "-s", "/etc/nginx/nginx.conf", f"{crafted}/conf.txt"])
    box.run(["ln", "-s", "/data/disk/o1/platforms/web", f"{crafted}/tree"])
    octopus(box, "platform", "add", "o2", "crafted", "--path", crafted, "--yes")
    octopus(box, "site", "add", "o2", "crafted.example.org", "--platform", "crafted",
            "--type", "php", "--yes")
    assert fetch(box, "crafted.example.org", "/")[0] == "200"  # control: the site works
    for path, never in (("/theirs.txt", "SECRET-OF-o1"), ("/conf.txt", "worker_processes"),
                        ("/tree/secret.txt", "SECRET-OF-o1")):
        code, body = fetch(box, "crafted.example.org", path)
        # Refused, or answered by the site's own front controller (every path Nginx does
        # not serve goes to index.php): never the linked file.
        assert never not in body, (path, code, body[:300])
        assert code in ("403", "404") or (code, body) == ("200", "ok crafted.example.org"), \
            (path, code, body[:300])


def fetch(box: Box, domain: str, path: str) -> tuple[str, str]:
    """GET `path` of `domain` from inside the box: status and body."""
    out = box.run(["curl", "-s", "-w", "\n%{http_code}", "-H", f"Host: {domain}",
                   f"http://127.0.0.1{path}"], check=False).stdout
    body, _, code = out.rpartition("\n")
    return code, body
