"""Probes that read /proc (through psutil) and talk to sockets; none of them forks."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from installer.agents.monitor import fastcgi
from installer.agents.monitor.pools import Pool, discover
from installer.stack.watched import ServiceSpec


@dataclass(frozen=True)
class Proc:
    pid: int
    name: str
    ppid: int
    started: float  # create time, so a reused pid is not taken for the same process


def snapshot() -> dict[int, Proc]:
    """Every process of the machine (one pass over /proc)."""
    procs: dict[int, Proc] = {}
    for p in psutil.process_iter(["name", "ppid", "create_time"]):
        info = p.info
        if info.get("name") is None:
            continue
        procs[p.pid] = Proc(p.pid, str(info["name"]), int(info.get("ppid") or 0),
                            float(info.get("create_time") or 0.0))
    return procs


def named(procs: dict[int, Proc], name: str) -> list[Proc]:
    return sorted((p for p in procs.values() if p.name == name), key=lambda p: p.pid)


def masters(procs: dict[int, Proc], name: str) -> list[Proc]:
    """Processes called `name` whose parent is called something else."""
    return [p for p in named(procs, name)
            if p.ppid not in procs or procs[p.ppid].name != name]


@dataclass
class Health:
    ok: bool
    evidence: str = ""
    hard: bool = False  # the process is gone or duplicated: no need to wait for a 2nd cycle
    supervised: bool = False  # gone, but its supervisor (mysqld_safe) is bringing it back
    masters: list[Proc] = field(default_factory=list)


def probe_socket(path: str, send: bytes, expect: Iterable[str], greeting: bool,
                 timeout: float) -> str | None:
    """None when the unix socket at `path` serves; else what went wrong."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(path)
            if send:
                conn.sendall(send)
            wanted = tuple(expect)
            if not (send or greeting or wanted):
                return None
            data = conn.recv(4096)
    except OSError as exc:
        return f"socket {path}: {exc.strerror or exc}"
    if not data:
        return f"socket {path}: closed without a word"
    text = data.decode("latin-1")
    if wanted and not any(text.startswith(w) for w in wanted):
        return f"socket {path}: answered {text.strip()[:60]!r}"
    return None


def probe_http(url: str, expect: str, timeout: float) -> str | None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80,
                                      timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"User-Agent": "barracuda-monitor"})
        response = conn.getresponse()
        body = response.read(65536).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        return f"GET {url}: {exc}"
    finally:
        conn.close()
    if response.status != 200:
        return f"GET {url}: HTTP {response.status}"
    if expect and expect not in body:
        return f"GET {url}: {expect!r} not in the answer"
    return None


def probe_pool(pool: Pool, timeout: float) -> str | None:
    if not pool.ping_path:
        if not pool.address.startswith("/"):
            return None
        problem = probe_socket(pool.address, b"", (), False, timeout)
        return f"pool {pool.name}: {problem}" if problem else None
    try:
        status, body = fastcgi.get(pool.address, pool.ping_path, timeout)
    except (OSError, ValueError) as exc:
        return f"pool {pool.name}: ping {pool.address}{pool.ping_path}: {exc}"
    if status != 200 or body.strip() != pool.ping_response:
        return f"pool {pool.name}: ping answered {status} {body.strip()[:40]!r}"
    return None


def pidfile_pid(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def find_master(spec: ServiceSpec, procs: dict[int, Proc]) -> Health | list[Proc]:
    """The master(s) of a service, or why there is none. With a pid file, the master is the
    process it names: workers orphaned by a dead master (they may still hold the socket and
    answer) are leftovers, not a master."""
    found = masters(procs, spec.process)
    if spec.pidfile:
        pid = pidfile_pid(spec.pidfile)
        master = procs.get(pid) if pid else None
        if master is None or master.name != spec.process:
            left = f" ({len(found)} orphaned {spec.process} left)" if found else ""
            why = (f"{spec.pidfile} names no live {spec.process}" if pid
                   else f"no {spec.pidfile}")
            return Health(False, (why if found else f"no {spec.process} process") + left,
                          hard=True, masters=found)
        found = [master, *(p for p in found if p.pid != master.pid)]
    if not found:
        keeper = named(procs, spec.supervisor) if spec.supervisor else []
        if keeper:
            return Health(False, f"no {spec.process} process; {spec.supervisor} (PID "
                          f"{keeper[0].pid}) is restarting it", hard=True, supervised=True)
        return Health(False, f"no {spec.process} process", hard=True)
    if spec.single and len(found) > 1:
        pids = " ".join(str(p.pid) for p in found)
        return Health(False, f"{len(found)} {spec.process} masters (PIDs {pids})", hard=True,
                      masters=found)
    return found


def check(spec: ServiceSpec, procs: dict[int, Proc], timeout: float) -> Health:
    """The health of a probed service: its master process, then its socket, HTTP and pools."""
    found = find_master(spec, procs)
    if isinstance(found, Health):
        return found
    problems: list[str] = []
    if spec.socket:
        problem = probe_socket(spec.socket, spec.send, spec.expect, spec.greeting, timeout)
        if problem:
            problems.append(problem)
    if spec.http_url and not problems:
        problem = probe_http(spec.http_url, spec.http_expect, timeout)
        if problem:
            problems.append(problem)
    if spec.pools and not problems:
        for pool in discover(spec.pools):
            problem = probe_pool(pool, timeout)
            if problem:
                problems.append(problem)
    if problems:
        return Health(False, "; ".join(problems), masters=found)
    return Health(True, f"{spec.process} PID {found[0].pid}", masters=found)
