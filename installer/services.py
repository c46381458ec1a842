"""One small interface to services, with systemd as PID 1 and without it (sysvinit scripts
through `service`, as on Devuan or in a container)."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from typing import Protocol

from installer.runner import Runner
from installer.target import Target


class ServiceManager(Protocol):
    kind: str

    def is_running(self, name: str) -> bool: ...
    def is_enabled(self, name: str) -> bool: ...
    def enable(self, name: str) -> None: ...
    def start(self, name: str) -> None: ...
    def stop(self, name: str) -> None: ...
    def restart(self, name: str) -> None: ...
    def reload(self, name: str) -> None: ...


@dataclass
class Systemd:
    runner: Runner
    kind: str = "systemd"

    def _ctl(self, *args: str, check: bool = True) -> bool:
        return self.runner.run(["systemctl", *args], check=check, timeout=180).ok

    def is_running(self, name: str) -> bool:
        return self._ctl("is-active", "--quiet", name, check=False)

    def is_enabled(self, name: str) -> bool:
        return self._ctl("is-enabled", "--quiet", name, check=False)

    def enable(self, name: str) -> None:
        self._ctl("enable", name)

    def start(self, name: str) -> None:
        self._ctl("start", name)

    def stop(self, name: str) -> None:
        self._ctl("stop", name)

    def restart(self, name: str) -> None:
        self._ctl("restart", name)

    def reload(self, name: str) -> None:
        self._ctl("reload-or-restart", name)


@dataclass
class Sysv:
    """Init scripts in /etc/init.d, run through `service`; enabled = rc2.d start links."""

    runner: Runner
    kind: str = "sysv"

    def _service(self, name: str, action: str, check: bool = True) -> bool:
        return self.runner.run(["service", name, action], check=check, timeout=180).ok

    def is_running(self, name: str) -> bool:
        return self._service(name, "status", check=False)

    def is_enabled(self, name: str) -> bool:
        # rcS.d: started once at boot, before the multi-user runlevels (a firewall)
        return bool(glob.glob(f"/etc/rc[S2345].d/S[0-9][0-9]{name}"))

    def enable(self, name: str) -> None:
        self.runner.run(["update-rc.d", name, "defaults"], timeout=60)
        self.runner.run(["update-rc.d", name, "enable"], timeout=60)

    def start(self, name: str) -> None:
        self._service(name, "start")

    def stop(self, name: str) -> None:
        self._service(name, "stop")

    def restart(self, name: str) -> None:
        self._service(name, "restart")

    def reload(self, name: str) -> None:
        # Some init scripts (redis-server) have no reload action: restart instead.
        if not self._service(name, "reload", check=False):
            self._service(name, "restart")


def manager_for(init_system: str, runner: Runner, target: Target) -> ServiceManager | None:
    """The service manager of a live machine; None for a --root tree (nothing is executed)."""
    if not target.live:
        return None
    return Systemd(runner) if init_system == "systemd" else Sysv(runner)
