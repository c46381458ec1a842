"""The firewall (_XTRAS_LIST CSF) in a fresh box, probed from outside it.

The box has its own network namespace (systemd-nspawn --private-network, or unshare --net)
with only `lo`. The test makes three client namespaces of its own (`ip netns`), each joined
to the box by a veth pair on a private 10.231.N.0/24 link that exists only between the two
namespaces: nothing here ever reaches an address outside the machine.

A port that answers either accepts the connection or refuses it (RST: it passed the
firewall, nothing listens); a dropped port times out."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.box.boxes import Box
from tests.box.conftest import installed_box

pytestmark = pytest.mark.box

IP = "/usr/sbin/ip"
PY = "/usr/bin/python3"
# Short windows so the test is fast (the box's installed profiles/firewall.yml is edited).
OVERRIDE = {
    "bantime_s": 15, "findtime_s": 30, "factor": 1, "maxtime_s": 600,
    "jails": {"sshd": {"maxretry": 3, "findtime_s": 60},
              "nginx-flood": {"maxretry": 20, "findtime_s": 30}},
}
PROBE = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except ConnectionRefusedError:
    print("refused")
except (TimeoutError, socket.timeout):
    print("timeout")
except OSError as exc:
    print("error", exc)
"""
FLOOD = r"""
import socket, sys
host, count = sys.argv[1], int(sys.argv[2])
done = 0
for i in range(count):
    try:
        s = socket.create_connection((host, 80), timeout=2)
        s.sendall(f"GET /flood-{i} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        while s.recv(65536):
            pass
        s.close()
        done += 1
    except OSError:
        break
print(done)
"""


@dataclass
class Client:
    ns: str
    address: str
    box_address: str


def host(argv: list[str], *, check: bool = True, timeout: float = 60,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check,
                          env=env)


class Net:
    """Client namespaces wired to the box's network namespace by veth pairs."""

    def __init__(self, box: Box) -> None:
        self.box = box
        self.tag = secrets.token_hex(2)
        self.clients: list[Client] = []

    def client(self, index: int) -> Client:
        assert self.box.leader is not None
        ns, outer, inner = f"fwt{self.tag}c{index}", f"fw{self.tag}c{index}", \
            f"fw{self.tag}b{index}"
        box_ip, client_ip = f"10.231.{index}.1", f"10.231.{index}.2"
        host([IP, "netns", "add", ns])
        self.clients.append(Client(ns, client_ip, box_ip))
        host([IP, "link", "add", outer, "type", "veth", "peer", "name", inner])
        host([IP, "link", "set", inner, "netns", str(self.box.leader)])
        host([IP, "link", "set", outer, "netns", ns])
        self.box.run([IP, "addr", "add", f"{box_ip}/24", "dev", inner])
        self.box.run([IP, "link", "set", inner, "up"])
        host([IP, "-n", ns, "addr", "add", f"{client_ip}/24", "dev", outer])
        host([IP, "-n", ns, "link", "set", outer, "up"])
        host([IP, "-n", ns, "link", "set", "lo", "up"])
        return self.clients[-1]

    def close(self) -> None:
        for client in self.clients:  # the veth pair goes with the namespace
            host([IP, "netns", "delete", client.ns], check=False)


def probe(client: Client, port: int, timeout: float = 3) -> str:
    out = host([IP, "netns", "exec", client.ns, PY, "-c", PROBE, client.box_address, str(port),
                str(timeout)], timeout=timeout + 30)
    return out.stdout.strip()


def http(client: Client, timeout: float = 3) -> int | None:
    """The status of GET / from the client, or None when it timed out."""
    out = host([IP, "netns", "exec", client.ns, "curl", "-s", "-o", "/dev/null", "-w",
                "%{http_code}", "--connect-timeout", str(timeout), "-m", str(timeout + 5),
                f"http://{client.box_address}/"], check=False, timeout=timeout + 30)
    return int(out.stdout) if out.returncode == 0 and out.stdout.isdigit() else None


def flood(client: Client, count: int) -> int:
    out = host([IP, "netns", "exec", client.ns, PY, "-c", FLOOD, client.box_address,
                str(count)], timeout=300)
    return int(out.stdout.strip() or 0)


def until(predicate: object, timeout: float, step: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(step)
    return False


def status(box: Box) -> dict[str, object]:
    report: dict[str, object] = json.loads(
        box.run(["barracuda", "firewall", "status", "--json"]).stdout)
    return report


def bans(box: Box) -> dict[str, dict[str, object]]:
    found = status(box)["banned"]
    assert isinstance(found, list)
    return {str(b["address"]): b for b in found}


def cnf(ssh_port: int = 22, allow: str = "10.231.3.2", deny: str = "") -> str:
    return (f'_XTRAS_LIST="CSF"\n_SSH_PORT="{ssh_port}"\n_FIREWALL_ALLOW="{allow}"\n'
            f'_FIREWALL_DENY="{deny}"\n')


def converge(box: Box, text: str, *, check: bool = True,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    box.write_file("/root/.barracuda.cnf", text, 0o600)
    return box.run(["barracuda", "install", "--yes"], check=check, env=env)


def set_profile(box: Box, override: dict[str, Any] | None = None) -> None:
    """Short ban windows (OVERRIDE, or `override`): merged into the installed copy of
    profiles/firewall.yml."""
    script = (
        "import json, sys, yaml\n"
        "from installer.data import profiles_dir\n"
        "path = profiles_dir() / 'firewall.yml'\n"
        "data = yaml.safe_load(path.read_text())\n"
        "over = json.loads(sys.argv[1])\n"
        "jails = over.pop('jails')\n"
        "data['fail2ban'].update(over)\n"
        "for name, values in jails.items():\n"
        "    data['fail2ban']['jails'][name].update(values)\n"
        "path.write_text(yaml.safe_dump(data, sort_keys=False))\n"
    )
    shebang = box.run(["/bin/sh", "-c", 'head -1 "$(command -v barracuda)"']).stdout
    python = shebang.strip().removeprefix("#!").split()[0]
    box.run([python, "-c", script, json.dumps(override or OVERRIDE)])


@pytest.fixture(scope="module")
def box(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[Box]:
    with installed_box(request.config) as installed:
        installed.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                       "openssh-server"], timeout=900)
        set_profile(installed)
        yield installed


@pytest.fixture(scope="module")
def net(box: Box) -> Iterator[tuple[Client, Client, Client]]:
    wiring = Net(box)
    try:
        a, b, c = wiring.client(1), wiring.client(2), wiring.client(3)
        # Before the firewall: every port answers (open or refused), none is dropped.
        assert probe(a, 3306) in ("open", "refused")
        first = converge(box, cnf(), env={"SSH_CONNECTION": "10.231.8.2 40022 10.231.8.1 22"})
        assert "firewall" in first.stderr
        again = box.run(["barracuda", "install", "--yes"],
                        env={"SSH_CONNECTION": "10.231.8.2 40022 10.231.8.1 22"})
        assert "\n0 changed, " in again.stderr, again.stderr[-2000:]
        yield a, b, c
    finally:
        wiring.close()


def test_web_and_ssh_answer_every_other_port_is_dropped(
        box: Box, net: tuple[Client, Client, Client]) -> None:
    a, _, _ = net
    assert http(a) is not None
    assert probe(a, 443) in ("open", "refused")
    assert probe(a, 22) == "open"  # sshd
    for port in (21, 25, 3306, 6379, 8080, 9000, 2222):
        assert probe(a, port) == "timeout", port
    # The session that ran the converge (SSH_CONNECTION) was admitted while it loaded.
    box.run(["nft", "get", "element", "inet", "barracuda", "sessions4", "{ 10.231.8.2 }"])
    report = status(box)
    assert report["loaded"] is True and report["open_tcp"] == [22, 80, 443]
    assert report["allow"] == ["10.231.3.2/32"]


def test_changing_the_ssh_port_moves_the_open_port(
        box: Box, net: tuple[Client, Client, Client]) -> None:
    a, _, _ = net
    converge(box, cnf(ssh_port=2222))
    assert probe(a, 2222) in ("open", "refused")
    assert probe(a, 22) == "timeout"
    converge(box, cnf())
    assert probe(a, 22) == "open" and probe(a, 2222) == "timeout"


def test_a_flood_is_banned_the_other_client_is_served_ban_expires_unban_lifts(
        box: Box, net: tuple[Client, Client, Client]) -> None:
    a, b, _ = net
    flood(a, 60)
    assert until(lambda: http(a, 2) is None, 30), "the flooding client was not banned"
    assert http(b) is not None
    ban = bans(box)["10.231.1.2"]
    assert ban["jail"] == "barracuda-nginx-flood"
    assert 0 < int(str(ban["expires_s"])) <= 600
    # The ban expires by itself (the set element's timeout).
    assert until(lambda: http(a, 2) is not None, 90), "the ban did not expire"
    # A repeat offender is banned again; unban lifts it at once.
    flood(a, 60)
    assert until(lambda: http(a, 2) is None, 30)
    out = box.run(["barracuda", "firewall", "unban", "10.231.1.2"])
    assert "unbanned" in out.stdout
    assert http(a) is not None
    assert "10.231.1.2" not in bans(box)


def test_an_allow_listed_client_flooding_is_never_banned(
        box: Box, net: tuple[Client, Client, Client]) -> None:
    _, _, c = net
    assert flood(c, 80) == 80
    time.sleep(5)
    assert http(c) is not None
    assert "10.231.3.2" not in bans(box)


def test_an_ssh_password_brute_force_is_banned(
        box: Box, net: tuple[Client, Client, Client]) -> None:
    a, _, _ = net
    askpass = f"/tmp/fwt-askpass-{secrets.token_hex(3)}"
    with open(askpass, "w") as handle:
        handle.write("#!/bin/sh\necho wrong-password\n")
    os.chmod(askpass, 0o700)
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "SSH_ASKPASS": askpass,
           "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
    try:
        for _ in range(6):
            host(["setsid", IP, "netns", "exec", a.ns, "ssh", "-o", "StrictHostKeyChecking=no",
                  "-o", "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=password",
                  "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
                  "-o", "ConnectTimeout=3", f"nosuchuser@{a.box_address}", "true"],
                 check=False, timeout=30, env=env)
            if probe(a, 22) == "timeout":
                break
        assert until(lambda: probe(a, 22) == "timeout", 20), "the brute force was not banned"
        assert bans(box)["10.231.1.2"]["jail"] == "sshd"
    finally:
        os.unlink(askpass)
        box.run(["barracuda", "firewall", "unban", "10.231.1.2"])
    assert probe(a, 22) == "open"


def _allow4(box: Box) -> str:
    return box.run(["nft", "list", "set", "inet", "barracuda", "allow4"]).stdout


def test_a_broken_allow_entry_is_exit_3_and_nothing_is_loaded(
        box: Box, net: tuple[Client, Client, Client]) -> None:
    before_set = _allow4(box)
    before_file = box.read_file("/etc/nftables.d/barracuda.nft")
    result = converge(box, cnf(allow="10.231.3.2 10.231.4.300/24"), check=False)
    assert result.returncode == 3
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: /root/.barracuda.cnf:3: _FIREWALL_ALLOW: \"10.231.4.300/24\" is "
                      "not an IPv4/IPv6 address or CIDR network (such as 192.0.2.10, "
                      "198.51.100.0/24 or 2001:db8::/32)"], result.stderr
    assert _allow4(box) == before_set
    assert box.read_file("/etc/nftables.d/barracuda.nft") == before_file


def test_a_ruleset_failing_to_load_leaves_the_previous_one_active(
        box: Box, net: tuple[Client, Client, Client]) -> None:
    _, b, _ = net
    before_file = box.read_file("/etc/nftables.d/barracuda.nft")
    # The kernel refusing the load is simulated: nft checks (-c) pass, loads (-f) fail.
    box.run(["mv", "/usr/sbin/nft", "/usr/sbin/nft.real"])
    box.write_file("/usr/sbin/nft", '#!/bin/sh\nfor a in "$@"; do [ "$a" = -c ] && '
                   'exec /usr/sbin/nft.real "$@"; done\nfor a in "$@"; do [ "$a" = -f ] && '
                   '{ echo "Error: simulated: the kernel refused the ruleset" >&2; exit 1; }; '
                   'done\nexec /usr/sbin/nft.real "$@"\n', 0o755)
    try:
        result = converge(box, cnf(deny="10.231.9.9"), check=False)
    finally:
        box.run(["mv", "/usr/sbin/nft.real", "/usr/sbin/nft"])
    assert result.returncode == 1, result.stderr[-2000:]
    assert "the previous ruleset stays active" in result.stderr
    assert "Rolled back" in result.stderr
    assert "10.231.9.9" not in box.run(["nft", "list", "set", "inet", "barracuda",
                                        "deny4"]).stdout
    assert box.read_file("/etc/nftables.d/barracuda.nft") == before_file
    assert http(b) is not None
    assert probe(b, 3306) == "timeout"
    converge(box, cnf())  # back to the working config
