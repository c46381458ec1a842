"""The firewall and abuse guard (_XTRAS_LIST code CSF, alias NFT): the successor of BOA's
csf/lfd on the distribution's nftables and fail2ban.

* /etc/nftables.conf includes /etc/nftables.d/*.nft; barracuda.nft is the one managed
  ruleset: default drop inbound, 80/443/_SSH_PORT (and FTPS when FTP is on) open, loopback and
  established traffic, IPv4 and IPv6 in one inet table, the allow/deny lists of the config.
* The ruleset is checked with `nft -c -f` before it is loaded, and loaded in one transaction:
  a load that fails leaves the previous ruleset active (and the run rolls the file back).
* No lockout: the address of the SSH session running the converge is admitted (a timeout set
  element) before anything loads, and a ruleset that would close _SSH_PORT, or a deny-list
  that covers that session, is refused.
* fail2ban jails (sshd, pure-ftpd, the Nginx access logs) ban into the table's banned4 and
  banned6 sets with the ban's time as the element's timeout."""

from __future__ import annotations

import glob
import hashlib
import ipaddress
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from installer.config import Config
from installer.config.xtras import select
from installer.data import load_profile
from installer.errors import ApplyError, ConfigError
from installer.facts import Facts
from installer.plan import Component, Validator
from installer.resources.base import Change, Context, Resource, restart
from installer.resources.files import Directory, File
from installer.resources.system import Command, Packages, Service
from installer.templates import render

CODES = ("CSF", "NFT")  # either code in _XTRAS_LIST turns the firewall on
ALLOW_KEY = "_FIREWALL_ALLOW"
DENY_KEY = "_FIREWALL_DENY"
FILTERS = ("nginx-flood", "nginx-login", "nginx-scan", "nginx-refused")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def profile() -> dict[str, Any]:
    return load_profile("firewall")


def enabled(config: Config, release: str) -> bool:
    return any(code in CODES for code in select(config["_XTRAS_LIST"], release).codes)


def ftp_enabled(config: Config, release: str) -> bool:
    return "FTP" in select(config["_XTRAS_LIST"], release).codes


# --------------------------------------------------------------------------- address lists


def parse_entry(raw: str) -> Network:
    """One allow/deny entry: an IPv4 or IPv6 address or network (CIDR); ValueError else."""
    try:
        return ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise ValueError(f'"{raw}" is not an IPv4/IPv6 address or CIDR network '
                         f"(such as 192.0.2.10, 198.51.100.0/24 or 2001:db8::/32)") from None


def entries(raw: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", raw.strip()) if item]


def parse_list(config: Config, key: str) -> list[Network]:
    """The networks of an allow/deny key; a bad entry is a ConfigError at the key's line."""
    networks = []
    for item in entries(str(config[key] or "")):
        try:
            networks.append(parse_entry(item))
        except ValueError as exc:
            raise config.error(key, str(exc)) from None
    return networks


def collapse(networks: Iterable[Network], version: int) -> list[str]:
    """The networks of one IP version merged (nft refuses overlapping interval elements)."""
    chosen = [n for n in networks if n.version == version]
    merged = ipaddress.collapse_addresses(chosen)  # type: ignore[type-var]
    return [str(n) if n.prefixlen != n.max_prefixlen else str(n.network_address)
            for n in merged]


def covers(networks: Iterable[Network], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == n.version and ip in n for n in networks)


# --------------------------------------------------------------------------- the SSH session


def session_address(env: Mapping[str, str] | None = None,
                    who: Callable[[], str] | None = None) -> str | None:
    """The client address of the SSH session running this process: SSH_CONNECTION or
    SSH_CLIENT, else `who -m` (the session of our terminal); None when there is none."""
    env = os.environ if env is None else env
    for var in ("SSH_CONNECTION", "SSH_CLIENT"):
        words = env.get(var, "").split()
        if words:
            return _address(words[0])
    text = who() if who is not None else _who_m()
    match = re.search(r"\(([^()\s]+)\)\s*$", text.strip())
    return _address(match.group(1)) if match else None


def _address(raw: str) -> str | None:
    raw = raw.strip("[]")
    if raw.startswith("::ffff:") and "." in raw:
        raw = raw[len("::ffff:"):]
    try:
        return str(ipaddress.ip_address(raw.split("%", 1)[0]))
    except ValueError:
        return None


def _who_m() -> str:
    try:
        result = subprocess.run(["who", "-m"], capture_output=True, text=True, timeout=10,
                                check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Firewall:
    """Everything the firewall's files are rendered from."""

    ssh_port: int
    ftp: bool
    allow: tuple[Network, ...]
    deny: tuple[Network, ...]
    systemd: bool = True

    @classmethod
    def from_config(cls, config: Config, release: str, systemd: bool = True) -> Firewall:
        return cls(int(config["_SSH_PORT"]), ftp_enabled(config, release),
                   tuple(parse_list(config, ALLOW_KEY)), tuple(parse_list(config, DENY_KEY)),
                   systemd)

    @property
    def tcp_ports(self) -> list[int]:
        prof = profile()
        ports = [int(p) for p in prof["open_tcp"]] + [self.ssh_port]
        if self.ftp:
            ports += [int(p) for p in prof["ftp"]["control"]]
        return sorted(set(ports))

    def ruleset(self) -> str:
        prof = profile()
        passive = [int(p) for p in prof["ftp"]["passive"]] if self.ftp else []
        return render("nftables/barracuda.nft.j2", {
            "table": prof["table"], "ssh_port": self.ssh_port, "tcp_ports": self.tcp_ports,
            "passive": passive, "icmp_rate": int(prof["icmp_echo_per_second"]),
            "allow4": collapse(self.allow, 4), "allow6": collapse(self.allow, 6),
            "deny4": collapse(self.deny, 4), "deny6": collapse(self.deny, 6),
        })

    def jail(self) -> str:
        prof = profile()
        f2b = prof["fail2ban"]
        ignoreip = ["127.0.0.1/8", "::1", *(str(n) for n in self.allow)]
        return render("fail2ban/jail.local.j2", {
            "f2b": f2b, "ignoreip": ignoreip, "systemd": self.systemd,
            "ssh_port": self.ssh_port, "ftp": self.ftp, "nginx_logs": f2b["nginx_logs"],
            "action": action_name(), "auth_log": f2b["auth_log"],
        })

    def filter(self, name: str) -> str:
        paths = profile()["fail2ban"]["jails"]["nginx-login"]["paths"]
        return render(f"fail2ban/{name}.conf.j2",
                      {"login_regex": "|".join(re.escape(str(p)) for p in paths)})

    def refusal(self, session: str | None) -> str | None:
        """Why this ruleset must not be loaded (it would lock the operator out), or None."""
        if not re.search(rf"tcp dport \{{[^}}]*\b{self.ssh_port}\b[^}}]*\}} accept",
                         self.ruleset()):
            return f"the ruleset would close the SSH port {self.ssh_port}"
        if session and covers(self.deny, session) and not covers(self.allow, session):
            return (f"{DENY_KEY} covers {session}, the address of this SSH session: "
                    f"it would be locked out (allow it in {ALLOW_KEY}, or remove the entry)")
        return None


def action_name() -> str:
    return os.path.basename(str(profile()["fail2ban"]["action_file"])).removesuffix(".conf")


# --------------------------------------------------------------------------- resources


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class RulesetLoaded(Resource):
    """The ruleset in the kernel is the one in the file: loaded (after `nft -c`) when the file
    changed since the last load or the table is missing. nft applies a file in one
    transaction, so a load that fails changes nothing: the previous ruleset stays active and
    the run rolls the file back."""

    loader: str
    ruleset: str
    table: str
    stamp: str

    @property
    def id(self) -> str:
        return f"nftables:{self.table}"

    @property
    def ok_reason(self) -> str:
        return f"table inet {self.table} loaded from {self.ruleset}"

    def _wanted(self, ctx: Context) -> str:
        path = ctx.target.path(self.ruleset)
        return _sha(path.read_bytes()) if path.is_file() else ""

    def check(self, ctx: Context) -> list[Change]:
        if not ctx.target.live:
            return [self.live_change(ctx, "load", "load the ruleset")]
        stamp = ctx.target.path(self.stamp)
        loaded = stamp.read_text().strip() if stamp.is_file() else ""
        if loaded != self._wanted(ctx):
            return [self.change("load", "the ruleset file changed since it was loaded")]
        table = ctx.runner.run(["nft", "list", "table", "inet", self.table], check=False,
                               timeout=60)
        if not table.ok:
            return [self.change("load", f"table inet {self.table} is not loaded")]
        return []

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        checked = ctx.runner.run(["nft", "-c", "-f", self.loader], check=False, timeout=120)
        if not checked.ok:
            raise ApplyError(f"nft -c -f {self.loader} failed, nothing loaded: "
                             f"{_nft_error(checked.output)}")
        loaded = ctx.runner.run(["nft", "-f", self.loader], check=False, timeout=120)
        if not loaded.ok:
            raise ApplyError(f"nft -f {self.loader} failed; the previous ruleset stays "
                             f"active: {_nft_error(loaded.output)}")
        ctx.target.path(self.stamp).write_text(self._wanted(ctx) + "\n")


def _nft_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["no output"])[0]


MONITORED = re.compile(r"^\s*[|`]-\s+(\S.*?)\s*$", re.M)


@dataclass
class JailsReadEveryLog(Resource):
    """Every Nginx access log is read by the Nginx jails. fail2ban expands a jail's logpath
    glob when the jail starts, so the log of a site added later (`octopus site add`: Nginx
    opens it on its reload) is read only once those jails are reloaded. Nothing to do when
    fail2ban does not run these jails (the firewall is off, or fail2ban is down: it reads
    every log when it starts)."""

    pattern: str  # the jails' logpath glob
    jails: tuple[str, ...]

    @property
    def id(self) -> str:
        return "fail2ban:nginx-logs"

    @property
    def ok_reason(self) -> str:
        return "the Nginx jails read every access log (or do not run here)"

    def _unread(self, ctx: Context) -> list[str]:
        """The logs the jails do not read yet (they share one glob: the first one tells)."""
        present = sorted(glob.glob(str(ctx.target.path(self.pattern))))
        result = ctx.runner.run(["fail2ban-client", "get", self.jails[0], "logpath"],
                                check=False, timeout=60)
        if not result.ok:
            return []  # not running: it reads every log when it starts
        read = set(MONITORED.findall(result.stdout))
        return [path for path in present if path not in read]

    def check(self, ctx: Context) -> list[Change]:
        if not ctx.target.live or not ctx.target.path("/usr/bin/fail2ban-client").exists():
            return []
        unread = self._unread(ctx)
        if not unread:
            return []
        return [self.change("reload", f"fail2ban does not read {', '.join(unread)} yet")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        for jail in self.jails:
            ctx.runner.run(["fail2ban-client", "reload", jail], timeout=120)


def guard_every_log() -> JailsReadEveryLog:
    """The resource that feeds new Nginx logs to the running Nginx jails."""
    return JailsReadEveryLog(str(profile()["fail2ban"]["nginx_logs"]),
                             tuple(f"barracuda-{name}" for name in FILTERS))


def admit_session(address: str, table: str, timeout_s: int) -> Command:
    """Put the SSH session's address in the sessions set before any load (created here when
    the table is not there yet, with the same definition the ruleset uses)."""
    family, kind = ("4", "ipv4_addr") if ipaddress.ip_address(address).version == 4 \
        else ("6", "ipv6_addr")
    script = (f"add table inet {table}\n"
              f"add set inet {table} sessions{family} {{ type {kind}; flags timeout; }}\n"
              f"add element inet {table} sessions{family} {{ {address} timeout {timeout_s}s }}\n")

    def admitted(ctx: Context) -> bool:
        result = ctx.runner.run(["nft", "get", "element", "inet", table, f"sessions{family}",
                                 f"{{ {address} }}"], check=False, timeout=60)
        return result.ok

    return Command("firewall-admit-session", ["nft", "-f", "-"], done=admitted,
                   why=f"admit {address}, the SSH session running this converge",
                   input=lambda ctx: script, requires=("packages:firewall",))


def no_lockout(fw: Firewall, session: str | None) -> Callable[[Context], str | None]:
    def check(ctx: Context) -> str | None:
        return fw.refusal(session)

    return check


def component(config: Config, facts: Facts, release: str,
              session: str | None = None) -> Component:
    """The firewall's component; the ConfigError of a bad allow/deny entry comes from here,
    before anything is planned."""
    prof = profile()
    systemd = facts.init_system == "systemd"
    fw = Firewall.from_config(config, release, systemd)
    f2b = prof["fail2ban"]
    services = prof["services"]
    packages = [*prof["packages"], *prof["packages_systemd" if systemd else "packages_sysv"]]
    after = ("packages:firewall",)
    ruleset = File(str(prof["ruleset"]), content=fw.ruleset(), mode=0o640, requires=after)
    resources: list[Resource] = [
        Packages("firewall", packages),
        Directory(str(prof["ruleset_dir"]), mode=0o755),
        File(str(prof["loader"]), template="nftables/nftables.conf.j2",
             context={"ruleset_dir": prof["ruleset_dir"]}, mode=0o644, requires=after),
        ruleset,
    ]
    if session:
        resources.append(admit_session(session, str(prof["table"]),
                                       int(prof["session_timeout_s"])))
    resources.append(RulesetLoaded(
        str(prof["loader"]), str(prof["ruleset"]), str(prof["table"]),
        str(prof["loaded_stamp"]),
        requires=(ruleset.id, *(["command:firewall-admit-session"] if session else []))))
    notify = (restart(services['fail2ban']),)
    resources += [
        File(str(f2b["action_file"]), template="fail2ban/action.conf.j2",
             context={"table": prof["table"]}, notify=notify, requires=after),
        *(File(f"{f2b['filter_dir']}/barracuda-{name}.conf", content=fw.filter(name),
               notify=notify, requires=after) for name in FILTERS),
        File(str(f2b["jail_file"]), content=fw.jail(), notify=notify, requires=after),
        guard_every_log(),
    ]
    if not systemd:
        # fail2ban refuses to start a jail whose log file does not exist: auth.log appears
        # only when something logs to it (no sshd yet, say). rsyslog writes it from then on.
        auth_log = str(f2b["auth_log"])
        resources.append(Command(
            "fail2ban-auth-log", ["install", "-m", "0640", "-o", "root", "-g", "adm",
                                  "/dev/null", auth_log],
            done=lambda ctx: ctx.target.path(auth_log).exists(),
            why=f"{auth_log} is missing: the sshd jail reads it", requires=after))
        resources.append(Service(str(services["rsyslog"]), requires=after))
    # Enabled at boot: nftables.service, or without systemd the init script of Debian's
    # orphan-sysvinit-scripts (rcS), both load the loader file; RulesetLoaded loads it now.
    resources.append(Service(services["nftables"], requires=after))
    resources.append(Service(services["fail2ban"], requires=after))
    return Component(
        "firewall", resources,
        validators=[Validator(["nft", "-c", "-f", str(prof["loader"])], "nft -c"),
                    Validator(["fail2ban-client", "--test"], "fail2ban-client --test")],
        preflight=[no_lockout(fw, session)],
    )


def build_components(config: Config, facts: Facts) -> list[Component]:
    """The firewall's component when CSF (or NFT) is in _XTRAS_LIST, else none."""
    release = facts.distro.codename
    if not enabled(config, release):
        return []
    return [component(config, facts, release, session_address())]


__all__ = ["ConfigError", "Firewall", "build_components", "component", "parse_entry",
           "session_address"]
