"""What the monitor watches: every Service resource of the stack `barracuda install`
converges, each with its probes from profiles/monitor.yml (paths from profiles/paths.yml)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from installer.errors import DataError
from installer.plan import Component
from installer.resources.system import Service

if TYPE_CHECKING:  # the stack imports this module to build the monitor's component
    from installer.stack.release import Release


@dataclass(frozen=True)
class ServiceSpec:
    """One watched service and how to probe it (empty fields: no such probe)."""

    name: str  # the unit / init script name
    key: str = ""  # its key in profiles/distros.yml (php for every FPM); "" without a probe
    version: str = ""  # the PHP version of an FPM service
    process: str = ""
    pidfile: str = ""
    socket: str = ""
    send: bytes = b""
    expect: tuple[str, ...] = ()
    greeting: bool = False
    http_url: str = ""
    http_expect: str = ""
    pools: str = ""  # glob of FPM pool files
    start_s: float = 10.0
    kill_leftovers: bool = True
    single: bool = True
    own_restarts: bool = False  # restarter: monitor (systemd's Restart= is turned off)
    supervisor: str = ""  # a process that restarts the master itself (mysqld_safe)

    @property
    def probed(self) -> bool:
        return bool(self.process)


def watched_services(components: Iterable[Component]) -> list[str]:
    """The names of the services the stack keeps running, in build order, once each."""
    names = [r.name for c in components for r in c.resources
             if isinstance(r, Service) and r.running]
    return list(dict.fromkeys(names))


def _key_of(name: str, release: Release) -> tuple[str, str]:
    """(distros key, PHP version) of service `name`; ("", "") when the release lacks it."""
    for key, service in dict(release.data.get("services", {})).items():
        if service == name:
            return str(key), ""
    php = re.escape(release.service("php", "X.Y")).replace(r"X\.Y", r"(\d+\.\d+)")
    match = re.fullmatch(php, name)
    if match:
        return "php", match.group(1)
    return "", ""


def _fill(value: Any, paths: Mapping[str, str], version: str) -> str:
    text = str(value).replace("X.Y", version) if version else str(value)
    try:
        return text.format_map(dict(paths))
    except (KeyError, ValueError) as exc:
        raise DataError(f"profiles/monitor.yml: {value!r}: unknown path {exc}") from exc


def spec_for(name: str, release: Release, profile: Mapping[str, Any],
             paths: Mapping[str, str]) -> ServiceSpec:
    key, version = _key_of(name, release)
    probes = dict(profile.get("services", {})).get(key) if key else None
    if not probes:
        return ServiceSpec(name=name, key=key, version=version)
    socket: dict[str, Any] = dict(probes.get("socket") or {})
    http: dict[str, Any] = dict(probes.get("http") or {})
    expect = socket.get("expect", [])
    return ServiceSpec(
        name=name, key=key, version=version,
        process=_fill(probes["process"], paths, version),
        pidfile=_fill(probes.get("pidfile", ""), paths, version),
        socket=_fill(socket.get("path", ""), paths, version),
        send=str(socket.get("send", "")).encode(),
        expect=tuple(str(e) for e in ([expect] if isinstance(expect, str) else expect)),
        greeting=bool(socket.get("greeting", False)),
        http_url=_fill(http.get("url", ""), paths, version),
        http_expect=str(http.get("expect", "")),
        pools=_fill(probes.get("pools", ""), paths, version),
        start_s=float(probes.get("start_s", 10)),
        kill_leftovers=str(probes.get("leftovers", "kill")) == "kill",
        single=bool(probes.get("single", True)),
        own_restarts=str(probes.get("restarter", "systemd")) == "monitor",
        supervisor=str(probes.get("supervisor", "")),
    )


def specs_for(components: Iterable[Component], release: Release, profile: Mapping[str, Any],
              paths: Mapping[str, str]) -> list[ServiceSpec]:
    return [spec_for(name, release, profile, paths) for name in watched_services(components)]
