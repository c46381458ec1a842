"""Root filesystems for the fresh-box tests: debootstrap once, reuse a tarball.

A rootfs is the *default* debootstrap variant of a Debian release (systemd, systemd-sysv and
/sbin/init included, python3 deliberately not: the project's install.sh must install what it
needs). It is tarred with numeric owners and xattrs (file capabilities survive) and compressed
with zstd into a cache directory outside the repository:

    $BARRACUDA_BOX_CACHE  or  /var/cache/barracuda-test

A tarball is built only when missing, under an exclusive fcntl lock (parallel pytest processes
wait for one build), into a temporary name that is renamed into place at the end. Delete the
tarball to rebuild it (e.g. to pick up a point release).

The mirror is the host's own Debian mirror, read from /etc/apt/sources.list and
/etc/apt/sources.list.d/*.sources (*.list too), falling back to deb.debian.org. The boxes reach
it through a plain-TCP bridge, so https mirrors are used over http (the archive is signed).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RELEASES: dict[str, str] = {"bookworm": "12", "trixie": "13"}
"""Supported Debian releases (codename -> version)."""

RECIPE = "v1"
"""Bumped whenever the way a rootfs is built changes, so that old tarballs are not reused."""

DEFAULT_CACHE = Path("/var/cache/barracuda-test")
DEFAULT_DEBIAN = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Suites that identify the official Debian archive (third-party repositories use other names).
_CODENAMES = {
    "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
    "oldoldstable", "oldstable", "stable", "testing", "unstable", "experimental",
}
_SUITE_SUFFIXES = ("", "-updates", "-backports", "-proposed-updates", "-security")


class RootfsError(RuntimeError):
    """A root filesystem could not be built."""


@dataclass(frozen=True)
class Mirrors:
    """Base URLs of the Debian archive and of the security archive (always http)."""

    debian: str = DEFAULT_DEBIAN
    security: str = DEFAULT_SECURITY

    def endpoints(self) -> list[tuple[str, int]]:
        """The distinct (host, port) pairs the boxes must be able to reach, main mirror first."""
        seen: list[tuple[str, int]] = []
        for url in (self.debian, self.security):
            parts = urllib.parse.urlsplit(url)
            endpoint = (parts.hostname or "", parts.port or 80)
            if endpoint not in seen:
                seen.append(endpoint)
        return seen


def cache_dir() -> Path:
    return Path(os.environ.get("BARRACUDA_BOX_CACHE") or DEFAULT_CACHE)


def tarball_path(release: str) -> Path:
    _check_release(release)
    return cache_dir() / f"{release}-default-{RECIPE}.tar.zst"


def _check_release(release: str) -> None:
    if release not in RELEASES:
        raise ValueError(f"unknown Debian release {release!r}; known: {', '.join(RELEASES)}")


# --------------------------------------------------------------------------- host mirrors


def _is_debian_suite(suite: str) -> bool:
    suite = suite.split("/")[0]  # "bullseye/updates" (old security layout)
    return any(suite == name + sfx for name in _CODENAMES for sfx in _SUITE_SUFFIXES)


def _is_security_suite(suite: str) -> bool:
    return suite.endswith("-security") or suite.endswith("/updates")


def _as_http(uri: str) -> str | None:
    parts = urllib.parse.urlsplit(uri.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    netloc = parts.hostname if parts.scheme == "https" else parts.netloc
    return urllib.parse.urlunsplit(("http", netloc, parts.path.rstrip("/"), "", ""))


def _one_line_entries(text: str) -> Iterator[tuple[str, list[str]]]:
    """(uri, [suite]) for each `deb` line of a one-line-style sources.list."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line)  # [signed-by=... arch=...]
        fields = line.split()
        if len(fields) >= 3:
            yield fields[1], [fields[2]]


def _deb822_entries(text: str) -> Iterator[tuple[str, list[str]]]:
    """(uri, suites) for each enabled `Types: deb` stanza of a deb822 .sources file."""
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key:
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        for uri in fields.get("uris", "").split():
            yield uri, suites


def host_mirrors(
    sources_list: Path = Path("/etc/apt/sources.list"),
    sources_d: Path = Path("/etc/apt/sources.list.d"),
) -> Mirrors:
    """The Debian and security mirrors the host's apt uses (deb.debian.org when unknown)."""
    entries: list[tuple[str, list[str]]] = []
    files: list[Path] = [sources_list]
    if sources_d.is_dir():
        files += sorted(sources_d.glob("*.list")) + sorted(sources_d.glob("*.sources"))
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        parser = _deb822_entries if path.suffix == ".sources" else _one_line_entries
        entries.extend(parser(text))
    return _pick_mirrors(entries)


def _pick_mirrors(entries: Iterable[tuple[str, list[str]]]) -> Mirrors:
    debian = security = None
    for uri, suites in entries:
        url = _as_http(uri)
        if url is None or not any(_is_debian_suite(s) for s in suites):
            continue
        if any(_is_security_suite(s) for s in suites):
            security = security or url
        else:
            debian = debian or url
    return Mirrors(debian or DEFAULT_DEBIAN, security or DEFAULT_SECURITY)


# --------------------------------------------------------------------------- building


def sources_for(release: str, mirrors: Mirrors) -> tuple[str, str]:
    """(path inside the rootfs, content) of the apt sources a fresh install of `release` has.

    bookworm gets the one-line /etc/apt/sources.list its installer writes, trixie the deb822
    /etc/apt/sources.list.d/debian.sources its installer writes.
    """
    if release == "bookworm":
        return "etc/apt/sources.list", (
            f"deb {mirrors.debian} {release} main\n"
            f"deb {mirrors.debian} {release}-updates main\n"
            f"deb {mirrors.security} {release}-security main\n"
        )
    return "etc/apt/sources.list.d/debian.sources", (
        f"Types: deb\nURIs: {mirrors.debian}\nSuites: {release} {release}-updates\n"
        f"Components: main\nSigned-By: {KEYRING}\n\n"
        f"Types: deb\nURIs: {mirrors.security}\nSuites: {release}-security\n"
        f"Components: main\nSigned-By: {KEYRING}\n"
    )


@contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _host_env() -> dict[str, str]:
    return {**os.environ, "PATH": HOST_PATH, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` in our mount namespace, deepest first."""
    prefix = str(path).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].replace("\\040", " ")
            if point == str(path) or point.startswith(prefix):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _remove_tree(path: Path) -> None:
    """rm -rf that first unmounts what debootstrap may have left mounted (proc, sys, ...)."""
    for point in mounts_under(path):
        subprocess.run(["umount", "-l", point], check=False, env=_host_env())
    if path.exists():
        shutil.rmtree(path)


def _run_logged(argv: list[str], log: Path) -> int:
    """Run `argv` in its own process group, output appended to `log`.

    If we are interrupted, the whole group is killed (debootstrap is a shell script: killing
    it alone would leave its dpkg children writing into the tree we are about to remove).
    """
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=_host_env())
        try:
            return proc.wait()
        finally:
            if proc.returncode is None:
                _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _write(path: Path, content: str, mode: int = 0o644) -> None:
    if path.is_symlink():
        path.unlink()
    path.write_text(content)
    path.chmod(mode)


def build_rootfs(release: str, target: Path, mirrors: Mirrors, log: Path) -> None:
    """debootstrap `release` into `target` and make it look like a freshly installed machine."""
    _check_release(release)
    argv = ["debootstrap", f"--keyring={KEYRING}", release, str(target), mirrors.debian]
    rc = _run_logged(argv, log)
    if rc != 0:
        raise RootfsError(f"debootstrap {release} failed (rc {rc}); see {log}")
    if not (target / "sbin/init").exists():
        raise RootfsError(f"debootstrap {release}: no /sbin/init in the default variant")

    rel_path, content = sources_for(release, mirrors)
    for old in ("etc/apt/sources.list", "etc/apt/sources.list.d/debian.sources"):
        (target / old).unlink(missing_ok=True)
    _write(target / rel_path, content)
    _write(target / "etc/hostname", "debian\n")
    # debootstrap copied the host's resolver; a box has no DNS (apt goes through a proxy).
    _write(target / "etc/resolv.conf", "# no DNS inside the barracuda test box\n")
    # Every box gets its own machine id at start (see boxes.py); the image has none.
    _write(target / "etc/machine-id", "", 0o444)
    (target / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    # /run is a fresh tmpfs on a booted machine; drop what the maintainer scripts left there.
    for entry in (target / "run").iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()

    if _run_logged(["chroot", str(target), "apt-get", "clean"], log) != 0:
        raise RootfsError(f"apt-get clean in the {release} rootfs failed; see {log}")


def _pack(source: Path, dest: Path) -> None:
    """tar | zstd `source` into `dest`."""
    tar_argv = ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                "-C", str(source), "-cf", "-", "."]
    with open(dest, "wb") as out:
        tar = subprocess.Popen(tar_argv, stdout=subprocess.PIPE, env=_host_env())
        assert tar.stdout is not None
        zstd = subprocess.run(["zstd", "-T0", "-3", "-q", "-c"], stdin=tar.stdout, stdout=out,
                              env=_host_env())
        tar.stdout.close()
        tar_rc = tar.wait()
    if tar_rc != 0 or zstd.returncode != 0:
        raise RootfsError(f"packing {source} failed (tar rc {tar_rc}, zstd rc {zstd.returncode})")


def ensure_rootfs(release: str, *, mirrors: Mirrors | None = None) -> Path:
    """Path of the rootfs tarball of `release`, built first if it is missing."""
    tarball = tarball_path(release)
    if tarball.is_file():
        return tarball
    cache = tarball.parent
    cache.mkdir(parents=True, exist_ok=True)
    with locked(cache / f".{release}.lock"):
        if tarball.is_file():  # built by another process while we waited
            return tarball
        mirrors = mirrors or host_mirrors()
        work = cache / f".{release}.build-{os.getpid()}"
        log = cache / f"{release}-build.log"
        log.write_text(f"# building {tarball.name} from {mirrors}\n")
        start = time.monotonic()
        print(f"[box] building {release} rootfs (debootstrap, about a minute)...",
              file=sys.stderr, flush=True)
        try:
            _remove_tree(work)
            work.mkdir(mode=0o755)
            build_rootfs(release, work / "root", mirrors, log)
            partial = work / tarball.name
            _pack(work / "root", partial)
            os.replace(partial, tarball)
        finally:
            _remove_tree(work)
        print(f"[box] {tarball} ready in {time.monotonic() - start:.1f}s",
              file=sys.stderr, flush=True)
    return tarball


def main(argv: list[str]) -> int:
    """python -m tests.box.rootfs [RELEASE...]: build (if missing) and print the tarballs."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up like on Ctrl-C
    for release in argv or list(RELEASES):
        print(ensure_rootfs(release))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
