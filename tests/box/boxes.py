"""Throwaway Debian boxes for end-to-end tests: a fresh rootfs in its own namespaces.

Two kinds, both started from the same default-debootstrap tarball (rootfs.py), each untarred
fresh into its own tmpfs under the work dir ($BARRACUDA_BOX_WORK or /var/tmp/barracuda-boxes):

* SystemdBox ("systemd"): `systemd-nspawn --boot`, systemd is PID 1, as on a real server.
* SysvBox ("sysv"): unshare(1) namespaces + chroot, PID 1 is a tiny bash loop that reaps
  orphans. No systemd runs: /run/systemd/system does not exist, services need `service X`.

Every box has its own network namespace with only `lo`. apt reaches the Debian mirror through a
socat bridge: a host socat listens on a unix socket and connects to the mirror's port 80; a
second socat, in the box's network namespace only, listens on 127.0.0.1:3142 and forwards to
that socket; /etc/apt/apt.conf.d/99box-proxy points apt at it. Nothing else leaves the box.

    box = start_box("systemd", "bookworm")
    try:
        box.run(["apt-get", "update"])
        assert box.host.service("cron").is_running
    finally:
        box.stop()

State of every box is kept in WORK/NAME.json (written before anything is created) so that boxes
of a killed test run can be removed later by cleanup_stale().
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import yaml

from . import rootfs
from .nsenter_backend import BASE_ENV, BOX_PATH, nsenter_argv, run_captured

if TYPE_CHECKING:
    import testinfra.host

KINDS = ("systemd", "sysv")
DEFAULT_WORK = Path("/var/tmp/barracuda-boxes")
REPO = Path(__file__).resolve().parents[2]
TMPFS_SIZE = "6g"
PROXY_PORT = 3142
LOADAVG = "/run/box-loadavg"  # inside the box: what its /proc/loadavg shows (Box.set_load)
PRESSURE = "/run/box-cpu.pressure"  # and what its cgroup's CPU pressure shows
# The PSI files the monitor reads (profiles/monitor.yml pressure_files).
PRESSURE_FILES: tuple[str, ...] = tuple(
    yaml.safe_load((REPO / "profiles/monitor.yml").read_text())["pressure_files"])
PROJECT_DIR = "/root/barracuda"
HOST_TOOLS = ("debootstrap", "systemd-nspawn", "socat", "zstd", "ip", "ss", "nsenter",
              "unshare", "mount", "umount", "chroot", "tar")
CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))
NSPAWN_RUN = Path("/run/systemd/nspawn")

# What a user who logged in as root has (install_project); run() adds DEBIAN_FRONTEND.
USER_ENV: Mapping[str, str] = {
    "PATH": BOX_PATH, "HOME": "/root", "LANG": "C.UTF-8", "USER": "root", "LOGNAME": "root",
    "SHELL": "/bin/bash", "TERM": "dumb",
}
# Files of a checkout that never go into a box, whatever .gitignore says.
_JUNK_PARTS = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache",
               ".tox", ".nox", ".box-artifacts"}
_JUNK_SUFFIXES = (".pyc", ".pyo")
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")
_SAFE_PATH_RE = re.compile(r"[A-Za-z0-9_./-]+")  # socat addresses split on , : !


class BoxError(RuntimeError):
    """A box could not be created, started or used."""


class BoxCommandError(BoxError):
    """A command run in a box failed (non-zero exit or timeout); `.result` has its output."""

    def __init__(self, box: str, display: str, result: subprocess.CompletedProcess[str],
                 reason: str) -> None:
        self.result = result
        lines = [f"[box {box}] {reason}: {display}"]
        for label, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            tail = (text or "").rstrip("\n").splitlines()[-40:]
            lines.append(f"--- {label} (last {len(tail)} lines) ---")
            lines.extend(tail)
        super().__init__("\n".join(lines))


def work_dir() -> Path:
    path = Path(os.environ.get("BARRACUDA_BOX_WORK") or DEFAULT_WORK)
    if not _SAFE_PATH_RE.fullmatch(str(path)):
        raise BoxError(f"work dir {path} must match {_SAFE_PATH_RE.pattern} (used by socat)")
    return path


def artifacts_root() -> Path:
    return Path(os.environ.get("BARRACUDA_BOX_ARTIFACTS") or REPO / ".box-artifacts")


def missing_host_tools() -> list[str]:
    return [tool for tool in HOST_TOOLS if shutil.which(tool, path=rootfs.HOST_PATH) is None]


def _host_env() -> dict[str, str]:
    return {"PATH": rootfs.HOST_PATH, "LC_ALL": "C", "HOME": "/root"}


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Proc:
    """A host process, identified by pid *and* start time (so a reused pid is not ours)."""

    pid: int
    start: int

    @staticmethod
    def _stat(pid: int) -> tuple[str, int] | None:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = raw[raw.rindex(")") + 2:].split()
        return fields[0], int(fields[19])  # state, starttime

    @classmethod
    def of(cls, pid: int) -> Proc | None:
        stat = cls._stat(pid)
        return None if stat is None else cls(pid, stat[1])

    def alive(self) -> bool:
        stat = self._stat(self.pid)
        return stat is not None and stat[1] == self.start and stat[0] not in ("Z", "X")

    def signal(self, sig: int, *, group: bool = False) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)

    def children(self) -> list[int]:
        found: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                found += [int(p) for p in (task / "children").read_text().split()]
        return found


def _wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


@contextlib.contextmanager
def _nspawn_lock() -> Iterator[None]:
    """Serialises nspawn start-up with the removal of its shared /run/systemd/nspawn dirs."""
    with rootfs.locked(work_dir() / ".nspawn.lock"):
        yield


# --------------------------------------------------------------------------- boxes


class Box:
    """A running throwaway Debian box. Create it with start_box()."""

    kind: ClassVar[str] = ""

    def __init__(self, name: str, release: str) -> None:
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"bad box name {name!r}: want {_NAME_RE.pattern}")
        if release not in rootfs.RELEASES:
            raise ValueError(f"unknown release {release!r}; known: {', '.join(rootfs.RELEASES)}")
        self.name = name
        self.release = release
        self.dir = work_dir() / name  # a tmpfs: root/, console.log, apt-N.sock, ...
        self.root = self.dir / "root"
        self.state_file = work_dir() / f"{name}.json"
        self.artifacts_dir = artifacts_root() / name
        self.failed = False  # set by the pytest hooks when a test using this box failed
        self.timings: dict[str, float] = {}
        self.boot_state = ""
        self.leader: int | None = None
        self._procs: dict[str, Proc] = {}
        self._popens: list[subprocess.Popen[bytes]] = []
        self._owner = Proc.of(os.getpid())
        self._mirrors = rootfs.host_mirrors()
        self._installs = 0
        self._host: testinfra.host.Host | None = None
        self._stopped = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.release} leader={self.leader}>"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Box:
        _LIVE[self.name] = self
        try:
            self._save_state()  # first: cleanup_stale() can always find what we create
            t0 = time.monotonic()
            self._create()
            t1 = time.monotonic()
            self._launch()
            t2 = time.monotonic()
            self._start_bridge()
            self.set_load(0.0)
            t3 = time.monotonic()
            self.timings.update(create=t1 - t0, boot=t2 - t1, bridge=t3 - t2)
        except BaseException as exc:
            try:
                self.stop()
            except Exception as cleanup:
                exc.add_note(f"stopping the half-started box failed too: {cleanup}")
            raise
        return self

    def set_load(self, per_cpu: float) -> None:
        """What the box's /proc/loadavg says: `per_cpu` x its CPUs. /proc/loadavg is not
        namespaced, so a box would otherwise read the host's load, which other work shares;
        every box starts idle (0.0) so that its monitor never sheds load because of the host,
        and a test sets a load to see the monitor act. A file bind-mounted over
        /proc/loadavg in the box's own mount namespace; rewritten in place (the bind mount
        follows the inode).

        The monitor weights the load by the CPU pressure of the box's cgroup where the
        kernel offers it (profiles/monitor.yml): that file is faked too, at full pressure, so
        the load set here is the load the monitor acts on. real_load() undoes both."""
        cpus = int(self.run(["getconf", "_NPROCESSORS_ONLN"]).stdout)
        load = per_cpu * cpus
        self.run(f"printf '%.2f %.2f %.2f 1/100 4242\\n' {load} {load} {load} > {LOADAVG}")
        self.run(f"printf 'some avg10=100.00 avg60=100.00 avg300=100.00 total=0\\n"
                 f"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\\n' > {PRESSURE}")
        for real, fake in (("/proc/loadavg", LOADAVG), *((p, PRESSURE) for p in PRESSURE_FILES)):
            if self.run(["test", "-e", real], check=False).returncode != 0:
                continue
            mounted = self.run(f"grep -qs ' {real} ' /proc/self/mounts", check=False)
            if mounted.returncode != 0:
                self.run(["mount", "--bind", fake, real])

    def real_load(self) -> None:
        """Show the box the kernel's own /proc/loadavg (the host's) and CPU pressure (its
        cgroup's) again, as a container on a shared machine sees them."""
        for real in ("/proc/loadavg", *PRESSURE_FILES):
            while self.run(f"grep -qs ' {real} ' /proc/self/mounts", check=False).returncode == 0:
                self.run(["umount", real])

    def _create(self) -> None:
        tarball = rootfs.ensure_rootfs(self.release, mirrors=self._mirrors)
        self.dir.mkdir(parents=True)
        self._host_cmd(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755",
                        f"box-{self.name}", str(self.dir)])
        self.root.mkdir(mode=0o755)
        self._host_cmd(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                        "-I", "zstd", "-C", str(self.root), "-xf", str(tarball)])
        # What the installer of a real machine leaves behind: a name, hosts, a machine id.
        self._put("etc/hostname", f"{self.name}\n")
        self._put("etc/hosts", (
            f"127.0.0.1\tlocalhost\n127.0.1.1\t{self.name}\n\n"
            "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
            "ff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"))
        self._put("etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
        self._put("etc/apt/apt.conf.d/99box-proxy", self._apt_proxy_conf())

    def _put(self, rel: str, content: str, mode: int = 0o644) -> None:
        """Write a file of the not yet started rootfs (never through a symlink)."""
        path = self.root / rel
        if path.is_symlink():
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "w") as out:
            out.write(content)
        os.chmod(path, mode)

    def _apt_proxy_conf(self) -> str:
        lines = ["// barracuda test box: apt reaches the mirror through a socat bridge\n"]
        for index, (host, _port) in enumerate(self._mirrors.endpoints()):
            url = f"http://127.0.0.1:{PROXY_PORT + index}"
            if index == 0:
                lines.append(f'Acquire::http::Proxy "{url}";\n')
            else:
                lines.append(f'Acquire::http::Proxy::{host} "{url}";\n')
        return "".join(lines)

    def _launch(self) -> None:
        raise NotImplementedError

    def _spawn(self, key: str, argv: Sequence[str], log: Path | None = None) -> Proc:
        """Start a host helper process in its own session; remember it for stop()."""
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(log, "ab")) if log else subprocess.DEVNULL
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env=_host_env())
        self._popens.append(popen)
        proc = Proc.of(popen.pid) or Proc(popen.pid, -1)
        self._procs[key] = proc
        self._save_state()
        return proc

    def _start_bridge(self) -> None:
        for index, (host, port) in enumerate(self._mirrors.endpoints()):
            self._bridge(index, host, port)

    def _bridge(self, index: int, host: str, port: int) -> None:
        """host: unix socket -> mirror:port; box netns: 127.0.0.1:(3142+index) -> socket."""
        leader = self._require_running()
        sock = self.dir / f"apt-{index}.sock"
        log = self.dir / "bridge.log"
        outer = self._spawn(f"socat-host-{index}", [
            "socat", f"UNIX-LISTEN:{sock},fork,mode=600", f"TCP:{host}:{port}"], log)
        _wait_until(lambda: sock.is_socket() or not outer.alive(), 10)
        if not sock.is_socket():
            raise BoxError(f"[box {self.name}] host socat did not create {sock}; see {log}")
        listen_port = PROXY_PORT + index
        inner = self._spawn(f"socat-box-{index}", [
            "nsenter", "-t", str(leader), "-n", "socat",
            f"TCP-LISTEN:{listen_port},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{sock}"],
            log)
        probe = ["nsenter", "-t", str(leader), "-n", "ss", "-Hlnt", f"sport = :{listen_port}"]

        def listening() -> bool:
            out = subprocess.run(probe, capture_output=True, text=True, env=_host_env())
            return bool(out.stdout.strip())

        _wait_until(lambda: listening() or not inner.alive(), 10)
        if not listening():
            raise BoxError(f"[box {self.name}] in-box socat is not listening; see {log}")

    def stop(self) -> None:
        """Stop the box and remove every trace: processes, mounts, cgroups, files. Idempotent."""
        if self._stopped:
            return
        errors: list[str] = []
        bridges = [proc for key, proc in self._procs.items() if key.startswith("socat-")]
        for proc in bridges:
            proc.signal(signal.SIGTERM, group=True)
        for proc in bridges:
            if not self._wait_gone(proc, 3):
                proc.signal(signal.SIGKILL, group=True)
        try:
            self._shutdown()
        except Exception as exc:  # keep cleaning up
            errors.append(f"shutdown: {exc}")
        self._reap()
        leftover = [f"{key}={proc.pid}" for key, proc in self._procs.items() if proc.alive()]
        if leftover:
            errors.append(f"processes still alive: {', '.join(leftover)}")
        try:
            self._cleanup_host()
        except Exception as exc:
            errors.append(f"host cleanup: {exc}")
        for point in rootfs.mounts_under(self.dir):
            rc = subprocess.run(["umount", point], capture_output=True, env=_host_env())
            if rc.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, env=_host_env())
        if rootfs.mounts_under(self.dir):
            errors.append(f"still mounted under {self.dir}")
        else:
            with contextlib.suppress(FileNotFoundError):
                if self.dir.exists():
                    shutil.rmtree(self.dir)
        self._stopped = True
        self.leader = None
        _LIVE.pop(self.name, None)
        if not errors:
            self.state_file.unlink(missing_ok=True)
        else:
            raise BoxError(f"[box {self.name}] incomplete stop: {'; '.join(errors)}")

    def _shutdown(self) -> None:
        raise NotImplementedError

    def _cleanup_host(self) -> None:
        """Kind-specific host residue (cgroups, /run/systemd/nspawn)."""

    def _reap(self) -> None:
        for popen in self._popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=5)

    def _wait_gone(self, proc: Proc | None, timeout: float) -> bool:
        """Wait for `proc` to exit (reaping our own children meanwhile)."""
        if proc is None:
            return True

        def gone() -> bool:
            for popen in self._popens:
                popen.poll()
            return not proc.alive()

        return _wait_until(gone, timeout)

    def _kill_and_wait(self, proc: Proc | None, sig: int, timeout: float) -> bool:
        if proc is not None:
            proc.signal(sig)
        return self._wait_gone(proc, timeout)

    def _save_state(self) -> None:
        state = {
            "name": self.name, "kind": self.kind, "release": self.release,
            "leader": self.leader,
            "owner": [self._owner.pid, self._owner.start] if self._owner else None,
            "procs": {key: [p.pid, p.start] for key, p in self._procs.items()},
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_file)

    def _host_cmd(self, argv: Sequence[str]) -> None:
        proc = subprocess.run(argv, capture_output=True, text=True, env=_host_env())
        if proc.returncode != 0:
            raise BoxError(f"[box {self.name}] {shlex.join(argv)} failed "
                           f"(rc {proc.returncode}): {proc.stderr.strip()}")

    # ------------------------------------------------------------------ commands

    def _require_running(self) -> int:
        if self.leader is None or self._stopped:
            raise BoxError(f"box {self.name} is not running")
        return self.leader

    def _argv(self, cmd: Sequence[str] | str, env: Mapping[str, str]) -> list[str]:
        words = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return [*nsenter_argv(self._require_running(), env), *words]

    def run(self, cmd: list[str] | str, *, check: bool = True, timeout: float = 900,
            input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run `cmd` inside the box (a str goes to /bin/sh -c) as root, with a clean env."""
        return self._run(cmd, check=check, timeout=timeout, input=input,
                         env={**BASE_ENV, **(env or {})})

    def _run(self, cmd: Sequence[str] | str, *, check: bool, timeout: float,
             input: str | None,
             env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        argv = self._argv(cmd, env)
        display = cmd if isinstance(cmd, str) else shlex.join(cmd)
        rc, out, err = run_captured(argv, input=None if input is None else input.encode(),
                                    timeout=timeout, env=_host_env())
        result = subprocess.CompletedProcess(argv, -9 if rc is None else rc,
                                             out.decode(errors="replace"),
                                             err.decode(errors="replace"))
        if rc is None:
            raise BoxCommandError(self.name, display, result,
                                  f"command timed out after {timeout:g}s")
        if check and result.returncode != 0:
            raise BoxCommandError(self.name, display, result,
                                  f"command failed (rc {result.returncode})")
        return result

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        """Write `content` to `path` in the box (parents created), then chmod it to `mode`."""
        script = 'set -e; mkdir -p -- "$(dirname -- "$1")"; cat > "$1"; chmod "$2" "$1"'
        self.run(["/bin/sh", "-c", script, "write_file", path, format(mode, "o")],
                 input=content)

    def read_file(self, path: str) -> str:
        return self.run(["cat", "--", path]).stdout

    def copy_in(self, src: Path, dest: str) -> None:
        """Copy a host file to the path `dest`, or a directory's contents into `dest`."""
        self._copy_in(Path(src), dest, None)

    def _copy_in(self, src: Path, dest: str, files: list[str] | None) -> None:
        """Stream `src` into the box with tar (a dir, optionally only `files`) or cat (a file)."""
        listing: Path | None = None
        if src.is_dir():
            producer = ["tar", "-C", str(src), "-cf", "-"]
            if files is None:
                producer.append(".")
            else:
                listing = self.dir / f"copy-{secrets.token_hex(4)}.list"
                listing.write_bytes(b"".join(name.encode() + b"\0" for name in files))
                producer += ["--null", "--no-recursion", "-T", str(listing)]
            script = 'mkdir -p -- "$1" && exec tar --no-same-owner -xf - -C "$1"'
        elif src.is_file():
            producer = ["cat", "--", str(src)]
            script = 'set -e; mkdir -p -- "$(dirname -- "$1")"; cat > "$1"; chmod "$2" "$1"'
        else:
            raise BoxError(f"copy_in: {src} is neither a file nor a directory")
        mode = format(src.stat().st_mode & 0o7777, "o")
        consumer = self._argv(["/bin/sh", "-c", script, "copy_in", dest, mode], BASE_ENV)
        try:
            rc, err = _pipe(producer, consumer, timeout=600)
        finally:
            if listing is not None:
                listing.unlink(missing_ok=True)
        if rc != 0:
            raise BoxError(f"[box {self.name}] copy_in {src} -> {dest} failed: {err}")

    def install_project(self, repo: Path, args: list[str] | None = None, *,
                        env: dict[str, str] | None = None,
                        timeout: float = 3600) -> subprocess.CompletedProcess[str]:
        """Copy the checkout to /root/barracuda and run `./install.sh ARGS` as a user would.

        The environment is a root login's (no DEBIAN_FRONTEND: the installer must cope); `env`
        adds to it. Output goes to ARTIFACTS/install-N.log; a non-zero exit raises.
        """
        args = ["--yes"] if args is None else list(args)
        repo = Path(repo)
        self._copy_in(repo, PROJECT_DIR, project_files(repo))
        self._installs += 1
        log = self.artifacts_dir / f"install-{self._installs}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        script = f'cd {PROJECT_DIR} && exec ./install.sh "$@"'
        display = f"cd {PROJECT_DIR} && ./install.sh {shlex.join(args)}"
        start = time.monotonic()
        try:
            result = self._run(["/bin/sh", "-c", script, "install.sh", *args], check=False,
                               timeout=timeout, input=None, env={**USER_ENV, **(env or {})})
        except BoxCommandError as exc:  # timed out
            _write_log(log, display, exc.result, time.monotonic() - start)
            raise
        _write_log(log, display, result, time.monotonic() - start)
        if result.returncode != 0:
            raise BoxCommandError(self.name, display, result,
                                  f"install.sh failed (rc {result.returncode}); log: {log}")
        return result

    @property
    def host(self) -> testinfra.host.Host:
        """A testinfra Host whose commands run inside this box (see nsenter_backend.py)."""
        if self._host is None:
            from .nsenter_backend import make_host

            self._host = make_host(self.name, leader=self._require_running)
        return self._host

    def collect_artifacts(self, dest: Path) -> None:
        """Copy /var/log, the journal, `ps auxf` and `ss -lntpx` of the box into `dest`."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        notes: list[str] = []
        for name in ("console.log", "bridge.log"):
            with contextlib.suppress(OSError):
                shutil.copyfile(self.dir / name, dest / name)
        if self.leader is None or self._stopped:
            (dest / "NOTE.txt").write_text("box was not running when artifacts were taken\n")
            if (self.root / "var/log").is_dir():
                shutil.copytree(self.root / "var/log", dest / "log", symlinks=True,
                                dirs_exist_ok=True)
            return
        commands: dict[str, list[str]] = {
            "ps.txt": ["ps", "auxf"],
            "ss.txt": ["ss", "-lntpx"],
        }
        if self.kind == "systemd":
            commands.update({
                "journal.txt": ["journalctl", "-b", "--no-pager"],
                "systemctl-failed.txt": ["systemctl", "--failed", "--no-pager"],
                "systemctl-units.txt": ["systemctl", "list-units", "--all", "--no-pager"],
            })
        for filename, cmd in commands.items():
            try:
                out = self.run(cmd, check=False, timeout=60)
                (dest / filename).write_text(out.stdout + out.stderr)
            except Exception as exc:
                notes.append(f"{shlex.join(cmd)}: {exc}")
        producer = self._argv(["tar", "-C", "/var", "-cf", "-", "log"], BASE_ENV)
        consumer = ["tar", "--no-same-owner", "-xf", "-", "-C", str(dest)]
        try:
            rc, err = _pipe(producer, consumer, timeout=300)
            if rc != 0:
                notes.append(f"/var/log: {err}")
        except Exception as exc:
            notes.append(f"/var/log: {exc}")
        if notes:
            (dest / "NOTE.txt").write_text("\n".join(notes) + "\n")


def _pipe(producer: list[str], consumer: list[str], timeout: float) -> tuple[int, str]:
    """Run `producer | consumer` on the host; (first non-zero rc or 0, their stderr)."""
    first = subprocess.Popen(producer, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=_host_env())
    assert first.stdout is not None and first.stderr is not None
    try:
        second = subprocess.run(consumer, stdin=first.stdout, capture_output=True,
                                env=_host_env(), timeout=timeout)
    except BaseException:
        first.kill()
        first.wait()
        raise
    finally:
        first.stdout.close()
    first_err = first.stderr.read()
    first.wait()
    err = (first_err + second.stderr).decode(errors="replace").strip()
    return first.returncode or second.returncode, err


def _write_log(log: Path, display: str, result: subprocess.CompletedProcess[str],
               seconds: float) -> None:
    log.write_text(f"$ {display}\n# rc={result.returncode} time={seconds:.1f}s\n"
                   f"\n=== stdout ===\n{result.stdout or ''}"
                   f"\n=== stderr ===\n{result.stderr or ''}")


class SystemdBox(Box):
    """systemd-nspawn --boot: systemd is PID 1 (launched from its own cgroup, see testbox.md)."""

    kind = "systemd"
    BOOT_TIMEOUT = 120.0

    def _cgroups(self) -> list[Path]:
        roots = [root for root in CGROUP_ROOTS if (root / "cgroup.procs").exists()]
        if not roots and _is_cgroup2(Path("/sys/fs/cgroup")):
            roots = [Path("/sys/fs/cgroup")]
        return [root / f"nspawn-{self.name}" for root in roots]

    def _launch(self) -> None:
        cgroups = self._cgroups()
        for group in cgroups:
            group.mkdir(exist_ok=True)
        # Join our own cgroups, then become systemd-nspawn (otherwise parallel containers
        # started from the root cgroup share its /payload + /supervisor children).
        join = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1"; shift; n=$((n-1)); done; ' \
               'exec "$@"'
        argv = ["/bin/sh", "-c", join, "join-cgroups", str(len(cgroups)),
                *[str(group / "cgroup.procs") for group in cgroups],
                "systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
                "--private-network", f"--machine={self.name}", "--boot",
                "--console=passive", "--link-journal=no", f"--directory={self.root}"]
        with _nspawn_lock():
            nspawn = self._spawn("launcher", argv, self.dir / "console.log")

            def find_leader() -> bool:
                for child in nspawn.children():
                    with contextlib.suppress(OSError):
                        if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                            self.leader = child
                            return True
                return not nspawn.alive()

            if not _wait_until(find_leader, 30) or self.leader is None:
                raise BoxError(f"[box {self.name}] systemd-nspawn did not start systemd:\n"
                               + self._console_tail())
            leader = Proc.of(self.leader)
            if leader is not None:
                self._procs["leader"] = leader
            self._save_state()
            self._wait_booted(nspawn)

    def _wait_booted(self, nspawn: Proc) -> None:
        state = ""

        def booted() -> bool:
            nonlocal state
            if not nspawn.alive():
                return True
            out = self.run(["systemctl", "is-system-running"], check=False, timeout=30)
            state = out.stdout.strip()
            return state in ("running", "degraded")

        _wait_until(booted, self.BOOT_TIMEOUT, step=0.1)
        self.boot_state = state
        if state not in ("running", "degraded"):
            raise BoxError(f"[box {self.name}] systemd did not finish booting "
                           f"(state {state!r}):\n" + self._console_tail())

    def _console_tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.dir / "console.log").read_text(errors="replace")
                             .splitlines()[-30:])
        return "(no console output)"

    def _shutdown(self) -> None:
        nspawn = self._procs.get("launcher")
        leader = self._procs.get("leader")
        if nspawn is None or not nspawn.alive():
            if leader is not None:
                self._kill_and_wait(leader, signal.SIGKILL, 5)
            return
        # SIGRTMIN+4 asks systemd for a clean poweroff; nspawn exits when PID 1 does.
        if leader is not None and leader.alive():
            leader.signal(signal.SIGRTMIN + 4)
            if self._wait_gone(nspawn, 30):
                return
            self._kill_and_wait(leader, signal.SIGKILL, 5)  # the kernel kills the pid ns
        if not self._kill_and_wait(nspawn, signal.SIGTERM, 5):
            self._kill_and_wait(nspawn, signal.SIGKILL, 5)

    def _cleanup_host(self) -> None:
        for group in self._cgroups():
            if group.is_dir():
                _remove_cgroup(group)
        with _nspawn_lock():
            for sub in ("propagate", "unix-export"):
                path = NSPAWN_RUN / sub / self.name
                if path.exists() and not rootfs.mounts_under(path):
                    shutil.rmtree(path, ignore_errors=True)
            # Shared dirs go only when empty (rmdir fails otherwise: another box uses them).
            for path in (NSPAWN_RUN / "propagate", NSPAWN_RUN / "unix-export",
                         NSPAWN_RUN / "locks", NSPAWN_RUN):
                with contextlib.suppress(OSError):
                    path.rmdir()
        left = [str(group) for group in self._cgroups() if group.exists()]
        if left:
            raise BoxError(f"cgroups left: {', '.join(left)}")


def _is_cgroup2(path: Path) -> bool:
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == str(path) and line.split()[2] == "cgroup2"
                   for line in mounts)


def _remove_cgroup(group: Path) -> None:
    """Kill whatever is still in `group` (nspawn's leftovers), then rmdir it depth-first."""
    for _ in range(50):
        pids = []
        for procs in group.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids += [int(p) for p in procs.read_text().split()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for dirpath, _dirs, _files in sorted(os.walk(group), key=lambda e: -len(e[0])):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)


class SysvBox(Box):
    """unshare(1) + chroot: no systemd, PID 1 is a bash loop that reaps orphans."""

    kind = "sysv"
    # Runs as PID 1 of the new namespaces, before the chroot. $1 root, $2 name, $3 init.
    SETUP = r"""
set -eu
root=$1 name=$2 init=$3
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
install -d -m 1777 "$root/run/lock"
mkdir -p "$root/dev/shm" "$root/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
[ -e "$root/dev/ptmx" ] || touch "$root/dev/ptmx"
mount --bind "$root/dev/pts/ptmx" "$root/dev/ptmx"
ip link set lo up
hostname "$name"
exec chroot "$root" /usr/bin/env -i "PATH=$BOX_PATH" /bin/bash -c "$init"
"""
    INIT = 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done'

    def _launch(self) -> None:
        argv = ["env", f"BOX_PATH={BOX_PATH}", "unshare", "--pid", "--mount", "--net", "--uts",
                "--ipc", "--fork", "--propagation", "private", "/bin/bash", "-c", self.SETUP,
                "box-setup", str(self.root), self.name, self.INIT]
        unshare = self._spawn("launcher", argv, self.dir / "console.log")
        root = str(self.root)

        def find_leader() -> bool:
            for child in unshare.children():
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{child}/root") == root:
                        self.leader = child
                        return True
            return not unshare.alive()

        if not _wait_until(find_leader, 30) or self.leader is None:
            log = (self.dir / "console.log").read_text(errors="replace")
            raise BoxError(f"[box {self.name}] unshare box did not start:\n{log}")
        leader = Proc.of(self.leader)
        if leader is not None:
            self._procs["leader"] = leader
        self._save_state()
        self.boot_state = "running"

    def _shutdown(self) -> None:
        # PID 1 of the pid namespace dies => the kernel kills every process in it; the mount
        # namespace (and all the box's mounts) goes with them.
        self._kill_and_wait(self._procs.get("leader"), signal.SIGKILL, 10)
        launcher = self._procs.get("launcher")
        if not self._wait_gone(launcher, 5):
            self._kill_and_wait(launcher, signal.SIGKILL, 5)


_KIND_CLASSES: dict[str, type[Box]] = {"systemd": SystemdBox, "sysv": SysvBox}
_LIVE: dict[str, Box] = {}


def start_box(kind: str, release: str, name: str | None = None) -> Box:
    """Start a fresh box of `kind` ("systemd" | "sysv") running Debian `release`."""
    if kind not in _KIND_CLASSES:
        raise ValueError(f"unknown box kind {kind!r}; known: {', '.join(KINDS)}")
    name = name or f"{kind}-{release}-{secrets.token_hex(3)}"
    if (work_dir() / name).exists() or (work_dir() / f"{name}.json").exists():
        raise BoxError(f"a box named {name} already exists under {work_dir()}")
    return _KIND_CLASSES[kind](name, release).start()


def leader_of(name: str) -> int:
    """Host PID of the init of the running box `name` (from its state file)."""
    try:
        state = json.loads((work_dir() / f"{name}.json").read_text())
    except (OSError, ValueError) as exc:
        raise BoxError(f"no running box named {name}") from exc
    if not state.get("leader"):
        raise BoxError(f"box {name} has no leader yet")
    return int(state["leader"])


def cleanup_stale() -> list[str]:
    """Remove the boxes of test runs that died (owner process gone). Returns their names."""
    work = work_dir()
    removed: list[str] = []
    if not work.is_dir():
        return removed
    for state_file in sorted(work.glob("*.json")):
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        owner = state.get("owner")
        if owner and Proc(*owner).alive():
            continue
        box = _KIND_CLASSES[state["kind"]](state["name"], state["release"])
        box.leader = state.get("leader")
        box._procs = {key: Proc(*value) for key, value in state.get("procs", {}).items()}
        with contextlib.suppress(BoxError):
            box.stop()
        removed.append(box.name)
    # Directories without a state file belong to nobody (the state file is written first).
    for path in sorted(work.iterdir()):
        if path.is_dir() and not (work / f"{path.name}.json").exists():
            for point in rootfs.mounts_under(path):
                subprocess.run(["umount", "-l", point], capture_output=True, env=_host_env())
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def project_files(repo: Path) -> list[str]:
    """Relative paths of the checkout's files: tracked + untracked-not-ignored, minus junk."""
    repo = Path(repo)
    if (repo / ".git").exists():
        out = subprocess.run(
            ["git", "-c", "safe.directory=*", "-C", str(repo), "ls-files", "-z", "--cached",
             "--others", "--exclude-standard"],
            capture_output=True, check=True, env={**_host_env(), "GIT_OPTIONAL_LOCKS": "0"},
        ).stdout
        names = [name for name in out.decode().split("\0") if name]
    else:
        names = [str(path.relative_to(repo)) for path in repo.rglob("*")
                 if path.is_file() or path.is_symlink()]
    keep = []
    for name in names:
        parts = Path(name).parts
        if _JUNK_PARTS.intersection(parts) or name.endswith(_JUNK_SUFFIXES):
            continue
        if any(part.endswith(".egg-info") for part in parts):
            continue
        path = repo / name
        if path.is_symlink() or path.is_file():  # deleted-but-tracked and submodules: skip
            keep.append(name)
    return sorted(set(keep))


def stop_all() -> None:
    """Stop every box this process started (atexit safety net)."""
    for box in list(_LIVE.values()):
        with contextlib.suppress(Exception):
            box.stop()


atexit.register(stop_all)
