"""A pytest-testinfra backend that runs commands inside a test box with nsenter.

Every command runs from the host as

    nsenter -t LEADER -m -u -i -n -p -r -w env -i PATH=... /bin/sh -c COMMAND

i.e. in the box's mount, UTS, IPC, network and PID namespaces and its root directory, so files,
/proc, sockets (ss), processes and the hostname are the box's, not the host's. Nothing (no
python, no ssh) is needed inside the box.

Use it through `Box.host` (boxes.py), or as `--hosts=nsenter://NAME` (a running box's name, see
boxes.leader_of) or `--hosts=nsenter://PID` once this module is imported (it registers itself).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import testinfra.backend
import testinfra.host
from testinfra.backend import base
from testinfra.modules.service import SystemdService, SysvService

from .rootfs import HOST_PATH

BOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_ENV: Mapping[str, str] = {
    "PATH": BOX_PATH,
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "DEBIAN_FRONTEND": "noninteractive",
}


def nsenter_argv(leader: int, env: Mapping[str, str] = BASE_ENV) -> list[str]:
    """argv prefix that runs the rest of the argv inside the box whose PID 1 is `leader`."""
    pairs = []
    for key, value in env.items():
        if not key or "=" in key:
            raise ValueError(f"bad environment variable name {key!r}")
        pairs.append(f"{key}={value}")
    return ["nsenter", "-t", str(leader), "-m", "-u", "-i", "-n", "-p", "-r", "-w",
            "env", "-i", *pairs]


def run_captured(argv: Sequence[str], *, input: bytes | None = None,
                 timeout: float | None = None,
                 env: Mapping[str, str] | None = None) -> tuple[int | None, bytes, bytes]:
    """Run `argv` on the host; (exit status or None on timeout, stdout, stderr).

    Output goes through temporary files, not pipes: a daemon started by the command inherits
    stdout/stderr and would keep a pipe (and us, waiting for EOF) open for as long as it runs.
    The command gets its own process group, killed on timeout or interruption.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        popen = subprocess.Popen(
            argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=out, stderr=err, start_new_session=True,
            env=dict(env) if env is not None else None)
        timed_out = False
        try:
            popen.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if popen.returncode is None:  # timeout, Ctrl-C, ...: do not leave it running
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
        out.seek(0)
        err.seek(0)
        return (None if timed_out else popen.returncode), out.read(), err.read()


class NsenterBackend(base.BaseBackend):  # type: ignore[misc]
    """testinfra backend: `hostname` is the box name (or a PID); `leader` resolves it."""

    NAME = "nsenter"

    def __init__(self, hostname: str, *args: Any,
                 leader: Callable[[], int] | None = None, **kwargs: Any) -> None:
        self.name = hostname
        self._leader = leader
        super().__init__(hostname, *args, **kwargs)

    def leader(self) -> int:
        if self._leader is not None:
            return self._leader()
        if self.name.isdigit():
            return int(self.name)
        from .boxes import leader_of  # only for --hosts=nsenter://NAME

        return leader_of(self.name)

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        cmd = self.get_command(command, *args)
        argv = [*nsenter_argv(self.leader()), "/bin/sh", "-c", cmd]
        rc, out, err = run_captured(argv, env={"PATH": HOST_PATH, "LC_ALL": "C"})
        return self.result(rc, self.encode(cmd), out, err)


class BoxHost(testinfra.host.Host):  # type: ignore[misc]
    """A testinfra Host whose `service` follows what really runs as PID 1 in the box.

    testinfra's own choice picks SystemdService whenever /sbin/init links to systemd, which is
    true in the sysv box too (same rootfs, but PID 1 is a plain shell). Here SystemdService is
    used only when systemd is booted (/run/systemd/system exists, sd_booted(3)'s test), else
    SysvService (`service X status`, /etc/rc?.d links): what an installer must rely on.
    """

    @functools.cached_property
    def systemd_booted(self) -> bool:
        return bool(self.run("test -d /run/systemd/system").rc == 0)

    def __getattr__(self, name: str) -> Any:
        if name == "service":
            klass = SystemdService if self.systemd_booted else SysvService
            module = type(klass.__name__, (klass,), {"_host": self})
            setattr(self, name, module)
            return module
        return super().__getattr__(name)


def make_host(name: str, leader: Callable[[], int] | None = None) -> BoxHost:
    backend = NsenterBackend(name, leader=leader)
    host = BoxHost(backend)
    backend.set_host(host)
    return host


testinfra.backend.BACKENDS.setdefault("nsenter", f"{__name__}.NsenterBackend")
