"""The firewall without a box: the ruleset and the fail2ban files rendered from the config,
the allow/deny lists (CIDRs checked, merged), the lockout guards and the CLI's parsers."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from installer.cli.firewall import banned_by_jail, edited, set_elements, set_key
from installer.config import Config
from installer.config.cnf import parse_text
from installer.config.schema import validate
from installer.data import load_profile
from installer.errors import EXIT_CONFIG, ConfigError
from installer.facts import Facts
from installer.resources.base import Context
from installer.resources.files import File
from installer.resources.system import Command, Packages, Service
from installer.runner import Result
from installer.stack import firewall
from installer.stack.firewall import Firewall, RulesetLoaded, build_components, session_address
from installer.state import ManagedState
from tests.fakes import FakeRunner, FakeServices, LiveTarget

PROFILE = load_profile("firewall")


def cfg(text: str) -> Config:
    return validate(parse_text(text, "/root/.barracuda.cnf"))


def facts(init: str = "systemd") -> Facts:
    return cast(Facts, SimpleNamespace(init_system=init,
                                       distro=SimpleNamespace(codename="bookworm")))


def fw(text: str = '_XTRAS_LIST="CSF"\n', systemd: bool = True) -> Firewall:
    return Firewall.from_config(cfg(text), "bookworm", systemd)


def open_ports(ruleset: str) -> list[int]:
    match = re.search(r'tcp dport \{ ([0-9, ]+) \} accept comment "open ports"', ruleset)
    assert match, ruleset
    return [int(p) for p in match.group(1).split(", ")]


def test_default_ruleset_drops_inbound_and_opens_web_and_ssh_only() -> None:
    text = fw().ruleset()
    assert "add table inet barracuda" in text
    assert "type filter hook input priority filter; policy drop;" in text
    assert open_ports(text) == [22, 80, 443]
    assert "FTPS passive" not in text
    assert 'iif "lo" accept' in text
    assert "ct state established,related accept" in text
    # IPv6: neighbour discovery is accepted, or the machine drops off the link.
    assert "nd-neighbor-solicit" in text
    # Never a flush of the whole ruleset (fail2ban's and other tables stay).
    assert "flush ruleset" not in text
    # Bans and sessions are declared, never flushed: they survive a reload.
    for name in ("banned4", "banned6", "sessions4", "sessions6"):
        assert f"flush set inet barracuda {name}" not in text
    # The allow-list is accepted before the bans are dropped.
    assert text.index("@allow4 accept") < text.index("@banned4 drop")
    assert text.index("@deny4 drop") < text.index("ct state established")


def test_ssh_port_and_ftp_move_the_open_ports() -> None:
    text = fw('_XTRAS_LIST="CSF FTP"\n_SSH_PORT="2222"\n').ruleset()
    assert open_ports(text) == [21, 80, 443, 2222]
    low, high = PROFILE["ftp"]["passive"]
    assert f'tcp dport {low}-{high} accept comment "FTPS passive"' in text


def test_allow_and_deny_lists_are_merged_per_family() -> None:
    text = fw('_XTRAS_LIST="CSF"\n'
              '_FIREWALL_ALLOW="10.0.0.0/8 10.1.0.0/16, 192.0.2.5 2001:db8::/32 2001:db8:1::/48"\n'
              '_FIREWALL_DENY="198.51.100.7/32 198.51.100.0/24 2001:db8:ffff::1"\n').ruleset()
    assert "add element inet barracuda allow4 { 10.0.0.0/8, 192.0.2.5 }" in text
    assert "add element inet barracuda allow6 { 2001:db8::/32 }" in text
    assert "add element inet barracuda deny4 { 198.51.100.0/24 }" in text
    assert "add element inet barracuda deny6 { 2001:db8:ffff::1 }" in text


def test_empty_lists_add_no_element_line() -> None:
    assert "add element" not in fw().ruleset()


@pytest.mark.parametrize("bad", ["10.0.0.300", "10.0.0.0/33", "example.org", "2001:db8::/129",
                                 "1.2.3.4/x"])
def test_a_bad_allow_entry_is_a_config_error_at_its_line(bad: str) -> None:
    config = cfg(f'_XTRAS_LIST="CSF"\n_SSH_PORT="22"\n_FIREWALL_ALLOW="192.0.2.1 {bad}"\n')
    with pytest.raises(ConfigError) as caught:
        build_components(config, facts())
    message = str(caught.value)
    assert message.startswith("/root/.barracuda.cnf:3: _FIREWALL_ALLOW: ")
    assert f'"{bad}" is not an IPv4/IPv6 address or CIDR network' in message
    assert "\n" not in message
    assert caught.value.exit_code == EXIT_CONFIG == 3


def test_a_bad_deny_entry_too() -> None:
    with pytest.raises(ConfigError, match=r"^/root/.barracuda.cnf:2: _FIREWALL_DENY: "):
        build_components(cfg('_XTRAS_LIST="NFT"\n_FIREWALL_DENY="nope"\n'), facts())


def test_the_firewall_is_built_only_with_csf_or_nft() -> None:
    assert build_components(cfg('_XTRAS_LIST="IMG GIT"\n'), facts()) == []
    for code in ("CSF", "NFT", "ALL"):
        components = build_components(cfg(f'_XTRAS_LIST="{code}"\n'), facts())
        assert [c.name for c in components] == ["firewall"], code


def test_component_validates_loads_and_runs_both_services(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.delenv("SSH_CLIENT", raising=False)
    component = firewall.component(cfg('_XTRAS_LIST="CSF"\n'), facts(), "bookworm", None)
    assert [v.argv for v in component.validators] == [
        ["nft", "-c", "-f", "/etc/nftables.conf"], ["fail2ban-client", "--test"]]
    services = [r.name for r in component.resources if isinstance(r, Service)]
    assert services == ["nftables", "fail2ban"]  # the monitor watches every Service
    loader = next(r for r in component.resources if isinstance(r, RulesetLoaded))
    assert "file:/etc/nftables.d/barracuda.nft" in loader.requires
    files = {r.path: r for r in component.resources if isinstance(r, File)}
    assert 'include "/etc/nftables.d/*.nft"' in files["/etc/nftables.conf"].wanted.decode()
    assert not any(isinstance(r, Command) for r in component.resources)
    # Without systemd, nftables and rsyslog start from the init scripts of Debian's
    # orphan-sysvinit-scripts, and fail2ban's sshd jail reads the auth.log rsyslog writes.
    sysv = firewall.component(cfg('_XTRAS_LIST="CSF"\n'), facts("sysv"), "bookworm", None)
    assert [r.name for r in sysv.resources if isinstance(r, Service)] == [
        "rsyslog", "nftables", "fail2ban"]
    packages = next(r for r in sysv.resources if isinstance(r, Packages))
    assert "orphan-sysvinit-scripts" in packages.packages
    files = {r.path: r for r in sysv.resources if isinstance(r, File)}
    assert "logpath = /var/log/auth.log\n" in files["/etc/fail2ban/jail.d/barracuda.local"] \
        .wanted.decode()
    assert [r.name for r in sysv.resources if isinstance(r, Command)] == ["fail2ban-auth-log"]


def test_the_ssh_session_is_admitted_before_the_load() -> None:
    component = firewall.component(cfg('_XTRAS_LIST="CSF"\n'), facts(), "bookworm",
                                   "192.0.2.44")
    admit = next(r for r in component.resources if isinstance(r, Command))
    script = admit.input(None) if admit.input else ""  # type: ignore[arg-type]
    assert "add element inet barracuda sessions4 { 192.0.2.44 timeout 3600s }" in script
    loader = next(r for r in component.resources if isinstance(r, RulesetLoaded))
    assert admit.id in loader.requires
    assert component.preflight[0](None) is None  # type: ignore[arg-type]


def test_session_address_sources() -> None:
    assert session_address({"SSH_CONNECTION": "192.0.2.9 50022 192.0.2.1 22"},
                           lambda: "") == "192.0.2.9"
    assert session_address({"SSH_CLIENT": "2001:db8::9 50022 22"}, lambda: "") == "2001:db8::9"
    assert session_address({"SSH_CLIENT": "::ffff:192.0.2.8 1 22"}, lambda: "") == "192.0.2.8"
    who = "root     pts/0        2026-11-20 10:00 (198.51.100.3)\n"
    assert session_address({}, lambda: who) == "198.51.100.3"
    assert session_address({}, lambda: "root tty1 2026-11-20 10:00\n") is None
    assert session_address({}, lambda: "") is None


def test_a_deny_list_covering_the_session_is_refused() -> None:
    denied = fw('_XTRAS_LIST="CSF"\n_FIREWALL_DENY="192.0.2.0/24"\n')
    problem = denied.refusal("192.0.2.44")
    assert problem and "locked out" in problem and "192.0.2.44" in problem
    assert denied.refusal("198.51.100.1") is None
    assert denied.refusal(None) is None
    allowed = fw('_XTRAS_LIST="CSF"\n_FIREWALL_DENY="192.0.2.0/24"\n'
                 '_FIREWALL_ALLOW="192.0.2.44"\n')
    assert allowed.refusal("192.0.2.44") is None


def test_a_ruleset_that_would_close_the_ssh_port_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    closed = fw()
    monkeypatch.setattr(Firewall, "ruleset", lambda self: "tcp dport { 80, 443 } accept\n")
    assert closed.refusal(None) == "the ruleset would close the SSH port 22"


def test_jail_bans_into_the_table_and_never_the_allow_list() -> None:
    text = fw('_XTRAS_LIST="CSF"\n_SSH_PORT="2222"\n'
              '_FIREWALL_ALLOW="192.0.2.5 10.9.0.0/16"\n').jail()
    f2b = PROFILE["fail2ban"]
    assert "banaction = barracuda-nftables" in text
    assert "ignoreip = 127.0.0.1/8 ::1 192.0.2.5/32 10.9.0.0/16" in text
    assert "bantime.increment = true" in text
    assert f"bantime = {f2b['bantime_s']}" in text
    assert f"bantime.maxtime = {f2b['maxtime_s']}" in text
    sshd = text.split("[sshd]")[1].split("\n[")[0]
    assert "port = 2222" in sshd and "backend = systemd" in sshd
    assert "enabled = false" in text.split("[pure-ftpd]")[1].split("\n[")[0]
    for name in firewall.FILTERS:
        section = text.split(f"[barracuda-{name}]")[1].split("\n[")[0]
        assert f"maxretry = {f2b['jails'][name]['maxretry']}" in section
        assert f"logpath = {f2b['nginx_logs']}" in section
    sysv = fw('_XTRAS_LIST="CSF FTP"\n', systemd=False).jail()
    assert "logpath = /var/log/auth.log" in sysv
    assert "enabled = true" in sysv.split("[pure-ftpd]")[1].split("\n[")[0]


def test_action_sets_the_bans_timeout() -> None:
    from installer.templates import render

    text = render("fail2ban/action.conf.j2", {"table": "barracuda"})
    assert "actionban = nft add element inet barracuda <set> { <ip> timeout <bantime>s }" in text
    assert "[Init?family=inet6]\nset = banned6" in text


def _regex(filter_text: str, name: str = "failregex") -> re.Pattern[str]:
    line = next(x for x in filter_text.splitlines() if x.startswith(f"{name} ="))
    pattern = line.split("=", 1)[1].strip()
    return re.compile(pattern.replace("<HOST>", r"(?P<host>\S+)"))


# As fail2ban matches them: the date is cut out of the line, its brackets stay.
def log(request: str, status: int, addr: str = "192.0.2.7") -> str:
    return f'{addr} - - [] "{request}" {status} 5 "-" "curl/8" a.example.org rt=0.001 urt=-'


def test_nginx_filters_match_what_they_are_for() -> None:
    f = fw()
    flood, flood_ignore = _regex(f.filter("nginx-flood")), _regex(f.filter("nginx-flood"),
                                                                  "ignoreregex")
    hit = flood.search(log("GET /node/1 HTTP/1.1", 200))
    assert hit and hit.group("host") == "192.0.2.7"
    assert flood_ignore.search(log("GET /sites/default/files/a.png?x=1 HTTP/1.1", 200))
    assert not flood_ignore.search(log("GET /node/1 HTTP/1.1", 200))
    login = _regex(f.filter("nginx-login"))
    assert login.search(log("POST /user/login HTTP/1.1", 200))
    assert login.search(log("POST /wp-login.php HTTP/1.1", 404))
    assert login.search(log("POST /user/login?destination=/x HTTP/1.1", 303))
    assert not login.search(log("GET /user/login HTTP/1.1", 200))
    assert not login.search(log("POST /node/add HTTP/1.1", 200))
    scan = _regex(f.filter("nginx-scan"))
    assert scan.search(log("GET /wp-admin/setup-config.php HTTP/1.1", 404))
    assert scan.search(log("GET /x.php?a=b HTTP/1.1", 404))
    assert not scan.search(log("GET /index.php HTTP/1.1", 200))
    assert not scan.search(log("GET /missing.html HTTP/1.1", 404))
    refused = _regex(f.filter("nginx-refused"))
    assert refused.search(log("GET / HTTP/1.1", 403))
    assert refused.search(log("TRACE / HTTP/1.1", 405))
    assert not refused.search(log("GET / HTTP/1.1", 404))


def test_cli_edits_one_key_line_and_keeps_the_rest(tmp_path: Path) -> None:
    text = '# mine\n_XTRAS_LIST="CSF"\n_FIREWALL_ALLOW="192.0.2.1" \n_SSH_PORT="22"\n'
    out = set_key(text, "f", "_FIREWALL_ALLOW", "192.0.2.1 192.0.2.2")
    assert out == '# mine\n_XTRAS_LIST="CSF"\n_FIREWALL_ALLOW="192.0.2.1 192.0.2.2"\n' \
                  '_SSH_PORT="22"\n'
    assert set_key("_SSH_PORT=22", "f", "_FIREWALL_DENY", "x") == \
        '_SSH_PORT=22\n_FIREWALL_DENY="x"\n'
    config = cfg('_FIREWALL_ALLOW="192.0.2.1"\n_FIREWALL_DENY="192.0.2.9 10.0.0.0/8"\n')
    assert edited(config, "_FIREWALL_ALLOW", "_FIREWALL_DENY", "192.0.2.9") == {
        "_FIREWALL_ALLOW": "192.0.2.1 192.0.2.9", "_FIREWALL_DENY": "10.0.0.0/8"}
    assert edited(config, "_FIREWALL_ALLOW", "_FIREWALL_DENY", "192.0.2.1/32") == {
        "_FIREWALL_ALLOW": "192.0.2.1", "_FIREWALL_DENY": "192.0.2.9 10.0.0.0/8"}


def test_status_parsers() -> None:
    raw = "[{'sshd': ['192.0.2.1']}, {'barracuda-nginx-flood': ['192.0.2.2', '2001:db8::2']}]"
    assert banned_by_jail(raw) == {"192.0.2.1": "sshd", "192.0.2.2": "barracuda-nginx-flood",
                                   "2001:db8::2": "barracuda-nginx-flood"}
    assert banned_by_jail("garbage(") == {} and banned_by_jail(None) == {}
    listing = ('{"nftables": [{"metainfo": {}}, {"set": {"name": "banned4", "elem": ['
               '{"elem": {"val": "192.0.2.2", "timeout": 900, "expires": 873}}]}}]}')
    assert set_elements(listing) == [{"address": "192.0.2.2", "expires_s": 873}]
    assert set_elements('{"nftables": [{"set": {"name": "banned4"}}]}') == []


def test_a_new_sites_log_makes_the_nginx_jails_reload(tmp_path: Path) -> None:
    """fail2ban expands the jails' glob when they start: a log that appeared later (a site
    added by octopus) is read once the jails are reloaded; nothing when fail2ban is down."""
    logs = tmp_path / "var/log/nginx"
    logs.mkdir(parents=True)
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/fail2ban-client").touch()
    for name in ("default", "a.example.org"):
        (logs / f"{name}.access.log").touch()
    read = [f"{logs}/default.access.log", f"{logs}/a.example.org.access.log"]
    runner = FakeRunner(root=tmp_path)

    def logpath(args: list[str]) -> Result:
        return Result(tuple(args), 0, "Current monitored log file(s):\n"
                      + "".join(f"|- {p}\n" for p in read[:-1]) + f"`- {read[-1]}\n")

    runner.answers[("fail2ban-client", "get")] = logpath
    target = LiveTarget(tmp_path)
    ctx = Context(target=target, runner=runner, facts=Facts(target, runner),
                  services=FakeServices(), state=ManagedState.load(target),
                  backup_dir=tmp_path / "moved")
    guard = firewall.guard_every_log()
    assert guard.check(ctx) == []
    (logs / "b.example.org.access.log").touch()  # Nginx opened a new site's log
    changes = guard.check(ctx)
    assert [c.reason for c in changes] == [
        f"fail2ban does not read {logs}/b.example.org.access.log yet"]
    guard.apply(ctx, changes)
    assert [c for c in runner.calls if c[1] == "reload"] == [
        ["fail2ban-client", "reload", f"barracuda-{name}"] for name in firewall.FILTERS]
    runner.answers[("fail2ban-client", "get")] = Result(("x",), 255, "not running")
    assert guard.check(ctx) == []  # when it starts, it reads every log
