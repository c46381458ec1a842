"""Facts about the managed machine: a probe plus a parser returning plain data.

One interface for a live machine and for a --root tree. Parsers are pure functions so they
are tested on recorded command outputs (tests/unit/test_facts.py)."""

from __future__ import annotations

import functools
import grp
import hashlib
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

import psutil

from installer.runner import Runner
from installer.target import Target


@dataclass(frozen=True)
class Distro:
    id: str  # debian, ubuntu
    version: str  # 12, 13, 24.04
    codename: str  # bookworm, trixie, noble

    def __str__(self) -> str:
        return f"{self.id} {self.version} ({self.codename})"


@dataclass(frozen=True)
class FileFacts:
    exists: bool
    kind: str = ""  # file, dir, link, other
    mode: int = 0
    uid: int = -1
    gid: int = -1
    sha256: str = ""
    link: str = ""  # symlink target


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str
    shell: str


def parse_os_release(text: str) -> Distro:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"').strip("'")
    codename = values.get("VERSION_CODENAME", "")
    if not codename and "VERSION" in values and "(" in values["VERSION"]:
        codename = values["VERSION"].split("(", 1)[1].rstrip(")").split()[0]
    return Distro(values.get("ID", "unknown"), values.get("VERSION_ID", ""), codename.lower())


def parse_dpkg_query(text: str) -> dict[str, str]:
    """Installed packages and versions from
    `dpkg-query -W -f '${Package}\\t${db:Status-Abbrev}\\t${Version}\\n'`."""
    installed: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        name, status, version = parts
        if status.strip() in ("ii", "hi"):  # installed (or installed and held)
            installed[name.split(":")[0]] = version
    return installed


def parse_passwd(text: str) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[2].isdigit() and fields[3].isdigit():
            accounts[fields[0]] = Account(
                fields[0], int(fields[2]), int(fields[3]), fields[5], fields[6]
            )
    return accounts


def parse_group(text: str) -> dict[str, int]:
    groups: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            groups[fields[0]] = int(fields[2])
    return groups


def parse_group_members(text: str) -> dict[str, tuple[str, ...]]:
    """The supplementary members of each group (the fourth field of /etc/group)."""
    members: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4:
            members[fields[0]] = tuple(m for m in fields[3].split(",") if m)
    return members


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


class Facts:
    """Reads facts lazily and caches the expensive ones for the run.

    File facts are never cached: apply re-checks each resource just before changing it."""

    def __init__(self, target: Target, runner: Runner) -> None:
        self.target = target
        self.runner = runner
        self._packages: dict[str, str] | None = None

    @functools.cached_property
    def distro(self) -> Distro:
        for candidate in (self.target.path("/etc/os-release"), Path("/etc/os-release")):
            if candidate.is_file():
                return parse_os_release(candidate.read_text(encoding="utf-8"))
        return Distro("unknown", "", "")

    @functools.cached_property
    def cpus(self) -> int:
        return psutil.cpu_count(logical=True) or 1

    @functools.cached_property
    def ram_mib(self) -> int:
        return int(psutil.virtual_memory().total // (1024 * 1024))

    @functools.cached_property
    def ipv6(self) -> bool:
        """Whether the kernel has IPv6 (a listen on [::] fails where it is turned off)."""
        return Path("/proc/net/if_inet6").exists()

    @property
    def init_system(self) -> str:
        """systemd when it runs as PID 1, sysv otherwise; none for a --root tree."""
        if not self.target.live:
            return "none"
        return "systemd" if Path("/run/systemd/system").is_dir() else "sysv"

    def packages(self) -> dict[str, str]:
        """Installed packages and their versions (cached; `forget_packages` after apt)."""
        if self._packages is None:
            admindir = self.target.path("/var/lib/dpkg")
            if not (admindir / "status").is_file():
                self._packages = {}
            else:
                argv = ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Version}\n"]
                if not self.target.live:
                    argv.insert(1, f"--admindir={admindir}")
                result = self.runner.run(argv, check=False, timeout=60)
                self._packages = parse_dpkg_query(result.stdout)
        return self._packages

    def forget_packages(self) -> None:
        self._packages = None

    def file(self, path: str) -> FileFacts:
        real = self.target.path(path)
        try:
            st = real.lstat()
        except FileNotFoundError:
            return FileFacts(False)
        if stat.S_ISLNK(st.st_mode):
            return FileFacts(True, "link", 0, st.st_uid, st.st_gid, link=os.readlink(real))
        if stat.S_ISDIR(st.st_mode):
            return FileFacts(True, "dir", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        if stat.S_ISREG(st.st_mode):
            return FileFacts(
                True, "file", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, sha256_file(real)
            )
        return FileFacts(True, "other", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)

    def user(self, name: str) -> Account | None:
        if self.target.live:
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                return None
            return Account(name, entry.pw_uid, entry.pw_gid, entry.pw_dir, entry.pw_shell)
        passwd = self.target.path("/etc/passwd")
        text = passwd.read_text(encoding="utf-8") if passwd.is_file() else ""
        return parse_passwd(text).get(name)

    def group_id(self, name: str) -> int | None:
        if self.target.live:
            try:
                return grp.getgrnam(name).gr_gid
            except KeyError:
                return None
        group = self.target.path("/etc/group")
        text = group.read_text(encoding="utf-8") if group.is_file() else ""
        return parse_group(text).get(name)

    def group_members(self, name: str) -> tuple[str, ...] | None:
        """The supplementary members of group `name`; None when there is no such group."""
        if self.target.live:
            try:
                return tuple(grp.getgrnam(name).gr_mem)
            except KeyError:
                return None
        group = self.target.path("/etc/group")
        text = group.read_text(encoding="utf-8") if group.is_file() else ""
        return parse_group_members(text).get(name)
