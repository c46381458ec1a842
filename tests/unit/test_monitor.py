"""The monitor's logic without a machine: the restart budget, specs from the stack, pool
discovery, the FastCGI ping, one cycle with fake probes and a fake service manager, the run
loop with a fake clock, incidents and mail."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from installer.agents.monitor import fastcgi, probes, system
from installer.agents.monitor import state as state_file
from installer.agents.monitor.budget import DOWN, FAILED, OK, PAUSED, Budget, fresh
from installer.agents.monitor.cycle import Monitor, Settings
from installer.agents.monitor.incidents import Incidents
from installer.agents.monitor.pools import parse_pools
from installer.agents.monitor.probes import Health, Proc
from installer.agents.monitor.run import Loop, run_until
from installer.data import load_profile
from installer.errors import CommandError
from installer.plan import Component
from installer.resources.system import Service
from installer.runner import Result
from installer.stack.release import Release
from installer.stack.watched import ServiceSpec, spec_for, watched_services

BUDGET = Budget(max_restarts=3, window_s=600, base_s=2, max_s=300, jitter=0.25,
                healthy_reset_s=600)


# --------------------------------------------------------------------------- budget


def test_first_restart_is_immediate_then_backoff_doubles_within_jitter() -> None:
    rec = fresh()
    assert BUDGET.decide(rec, 100.0) == "restart"
    BUDGET.restarted(rec, 100.0, rand=lambda: 0.5)  # no jitter at 0.5
    assert rec["next_at"] == 102.0
    assert BUDGET.decide(rec, 101.0) == "wait"
    BUDGET.restarted(rec, 102.0, rand=lambda: 0.5)
    assert rec["next_at"] == 106.0
    low, high = BUDGET.delay(3, rand=lambda: 0.0), BUDGET.delay(3, rand=lambda: 1.0)
    assert (low, high) == (6.0, 10.0)  # 8 s +/- 25 %
    assert BUDGET.delay(30, rand=lambda: 0.5) == 300.0  # capped


def test_budget_spent_within_window_fails_and_old_restarts_expire() -> None:
    rec = fresh()
    for t in (0.0, 10.0, 20.0):
        BUDGET.restarted(rec, t, rand=lambda: 0.5)
    assert BUDGET.decide(rec, 100.0) == "fail"
    assert BUDGET.decide(rec, 605.0) == "restart"  # the first one left the window


def test_sustained_health_forgets_the_history() -> None:
    rec = fresh()
    BUDGET.restarted(rec, 0.0, rand=lambda: 0.5)
    BUDGET.healthy(rec, 10.0)
    BUDGET.healthy(rec, 300.0)
    assert rec["restarts"] == [0.0]
    BUDGET.healthy(rec, 610.0)
    assert rec["restarts"] == [] and rec["next_at"] == 0


# --------------------------------------------------------------------------- specs


def stack_components() -> list[Component]:
    return [
        Component("base", [Service("cron")]),
        Component("nginx", [Service("nginx")]),
        Component("php8.2", [Service("php8.2-fpm")]),
        Component("php8.3", [Service("php8.3-fpm")]),
        Component("mariadb", [Service("mariadb"), Service("mariadb", running=True)]),
        Component("redis", [Service("redis-server")]),
        Component("extra", [Service("something-else"), Service("off", running=False)]),
    ]


def test_watched_services_come_from_the_stack_once_each() -> None:
    assert watched_services(stack_components()) == [
        "cron", "nginx", "php8.2-fpm", "php8.3-fpm", "mariadb", "redis-server",
        "something-else"]


def test_specs_are_data_from_the_profiles() -> None:
    release = Release.load("bookworm")
    profile = load_profile("monitor")
    paths = {k: str(v) for k, v in load_profile("paths").items()}
    php = spec_for("php8.3-fpm", release, profile, paths)
    assert (php.key, php.version, php.process) == ("php", "8.3", "php-fpm8.3")
    assert php.pidfile == f"{paths['php_run_dir']}/php8.3-fpm.pid"
    assert php.pools == f"{paths['php_etc_dir']}/8.3/fpm/pool.d/*.conf"
    redis = spec_for("redis-server", release, profile, paths)
    assert redis.socket == paths["redis_socket"] and redis.send == b"PING\r\n"
    assert redis.own_restarts
    cron = spec_for("cron", release, profile, paths)
    assert not cron.kill_leftovers and not cron.own_restarts
    unknown = spec_for("something-else", release, profile, paths)
    assert not unknown.probed


# --------------------------------------------------------------------------- pools + fastcgi


def test_pools_are_parsed_with_pool_substitution_and_comments() -> None:
    text = """; a comment
[global]
pid = /run/x.pid
[www]
listen = /run/php/php8.2-fpm.sock
ping.path = /fpm-ping
[o1]
listen = "/run/php/$pool.sock" ; trailing
ping.path = /ping
ping.response = alive
[tcp]
listen = 9001
[nolisten]
user = nobody
"""
    pools = parse_pools(text)
    assert [(p.name, p.address, p.ping_path, p.ping_response) for p in pools] == [
        ("www", "/run/php/php8.2-fpm.sock", "/fpm-ping", "pong"),
        ("o1", "/run/php/o1.sock", "/ping", "alive"),
        ("tcp", "127.0.0.1:9001", "", "pong"),
    ]


def fake_fpm(path: Path, reply: bytes) -> threading.Thread:
    """A one-shot FastCGI server on a unix socket that answers `reply` on stdout."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while b"\x01\x05\x00\x01\x00\x00" not in data:  # the empty STDIN record
                data += conn.recv(4096)
            seen.append(data)
            conn.sendall(fastcgi._record(fastcgi._STDOUT, reply)
                         + fastcgi._record(fastcgi._END, b"\0" * 8))
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    thread.seen = seen  # type: ignore[attr-defined]
    return thread


def test_fastcgi_ping_gets_the_pool_answer(tmp_path: Path) -> None:
    sock = tmp_path / "fpm.sock"
    thread = fake_fpm(sock, b"Content-type: text/plain\r\n\r\npong")
    status, body = fastcgi.get(str(sock), "/fpm-ping", timeout=3)
    thread.join(3)
    assert (status, body) == (200, "pong")
    assert b"SCRIPT_NAME/fpm-ping" in thread.seen[0]  # type: ignore[attr-defined]


def test_fastcgi_status_header_and_a_dead_socket(tmp_path: Path) -> None:
    sock = tmp_path / "fpm.sock"
    thread = fake_fpm(sock, b"Status: 404 Not Found\r\n\r\nFile not found.")
    assert fastcgi.get(str(sock), "/x", timeout=3)[0] == 404
    thread.join(3)
    with pytest.raises(OSError):
        fastcgi.get(str(tmp_path / "none.sock"), "/fpm-ping", timeout=1)


def test_masters_are_the_processes_whose_parent_has_another_name() -> None:
    procs = {1: Proc(1, "init", 0, 0), 10: Proc(10, "nginx", 1, 0), 11: Proc(11, "nginx", 10, 0),
             20: Proc(20, "mysqld_safe", 1, 0), 21: Proc(21, "mariadbd", 20, 0)}
    assert [p.pid for p in probes.masters(procs, "nginx")] == [10]
    assert [p.pid for p in probes.masters(procs, "mariadbd")] == [21]
    spec = ServiceSpec("nginx", "nginx", process="nginx")
    assert probes.check(spec, {1: procs[1]}, 1).hard
    procs[30] = Proc(30, "nginx", 1, 0)
    twice = probes.check(spec, procs, 1)
    assert twice.hard and "2 nginx masters" in twice.evidence


def test_socket_probe_reads_the_protocol_answer(tmp_path: Path) -> None:
    path = tmp_path / "redis.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(100)
            conn.sendall(b"-NOAUTH Authentication required.\r\n")

    threading.Thread(target=serve, daemon=True).start()
    assert probes.probe_socket(str(path), b"PING\r\n", ("+PONG", "-NOAUTH"), False, 2) is None
    server.close()
    problem = probes.probe_socket(str(tmp_path / "gone.sock"), b"", (), True, 1)
    assert problem and "gone.sock" in problem


# --------------------------------------------------------------------------- the cycle


@dataclass
class FakeManager:
    kind: str = "fake"
    actions: list[str] = field(default_factory=list)
    fail_start: set[str] = field(default_factory=set)

    def is_running(self, name: str) -> bool:
        return True

    def is_enabled(self, name: str) -> bool:
        return True

    def enable(self, name: str) -> None:
        self.actions.append(f"enable {name}")

    def _do(self, verb: str, name: str) -> None:
        self.actions.append(f"{verb} {name}")
        if name in self.fail_start:
            raise CommandError(["service", name, verb], 1, "broken config")

    def start(self, name: str) -> None:
        self._do("start", name)

    def stop(self, name: str) -> None:
        self.actions.append(f"stop {name}")

    def restart(self, name: str) -> None:
        self._do("restart", name)

    def reload(self, name: str) -> None:
        self.actions.append(f"reload {name}")


@dataclass
class Mailer:
    calls: list[list[str]] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, timeout: float = 300, check: bool = True,
            input: str | None = None, env: Mapping[str, str] | None = None) -> Result:
        self.calls.append(list(argv))
        self.inputs.append(input or "")
        return Result(tuple(argv), 0)


@dataclass
class World:
    """The machine as the fake probes see it."""

    now: float = 1000.0
    down: set[str] = field(default_factory=set)
    load: float = 0.1
    pids: dict[str, int] = field(default_factory=dict)


def make_monitor(tmp_path: Path, world: World, manager: FakeManager,
                 specs: list[ServiceSpec] | None = None, **settings: Any) -> Monitor:
    specs = specs or [ServiceSpec("nginx", "nginx", process="nginx", start_s=0),
                      ServiceSpec("php8.2-fpm", "php", "8.2", process="php-fpm8.2", start_s=0)]

    def probe(spec: ServiceSpec, procs: dict[int, Proc]) -> Health:
        if spec.name in world.down:
            return Health(False, f"no {spec.process} process", hard=True)
        pid = world.pids.setdefault(spec.name, 100)
        return Health(True, "up", masters=[Proc(pid, spec.process, 1, 0)])

    def start_hook(name: str) -> None:
        if name not in manager.fail_start:
            world.down.discard(name)

    original = manager._do

    def doing(verb: str, name: str) -> None:
        original(verb, name)
        start_hook(name)

    manager._do = doing  # type: ignore[method-assign]
    defaults: dict[str, Any] = dict(
        interval=2, spider=2.1, max=4.1, crit=6.1, runaway_cli=("php", "wget"), budget=BUDGET,
        shield_flag=str(tmp_path / "shield.on"), cpus=2, soft_failures=2,
        disk_paths=(str(tmp_path),))
    defaults.update(settings)
    incidents = Incidents(tmp_path / "incidents.log", Mailer(), email="ops@example.org",
                          sendmail="/bin/true", min_interval_s=900)
    return Monitor(specs, Settings(**defaults), manager, incidents,
                   clock=lambda: world.now, rand=lambda: 0.5, snapshot=dict, probe=probe,
                   read_load=lambda: (world.load * 2, world.load), kill=lambda pid, sig: None)


def lines(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "incidents.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_healthy_cycle_does_nothing(tmp_path: Path) -> None:
    world, manager = World(), FakeManager()
    monitor = make_monitor(tmp_path, world, manager)
    state = state_file.empty()
    monitor.cycle(state)
    assert manager.actions == [] and lines(tmp_path) == []
    assert state["services"]["nginx"]["state"] == OK
    assert state["checks"]["load"] == OK


def test_a_dead_service_is_restarted_once_with_one_incident(tmp_path: Path) -> None:
    world, manager = World(down={"nginx"}), FakeManager()
    monitor = make_monitor(tmp_path, world, manager)
    state = state_file.empty()
    monitor.cycle(state)
    assert manager.actions == ["start nginx"]
    [line] = lines(tmp_path)
    assert line["check"] == "service:nginx" and line["evidence"] == "no nginx process"
    assert line["action"].startswith("start nginx (1/3 within 600 s)")
    assert line["result"].startswith("serving again after ")
    assert set(line) == {"time", "check", "evidence", "action", "result"}
    world.now += 2
    monitor.cycle(state)
    assert manager.actions == ["start nginx"] and len(lines(tmp_path)) == 1


def test_a_broken_service_spends_its_budget_then_is_failed_once(tmp_path: Path) -> None:
    world, manager = World(down={"nginx"}), FakeManager(fail_start={"nginx"})
    monitor = make_monitor(tmp_path, world, manager)
    state = state_file.empty()
    for _ in range(40):
        monitor.cycle(state)
        world.now += 2
    assert manager.actions == ["start nginx"] * 3
    nginx = [line for line in lines(tmp_path) if line["check"] == "service:nginx"]
    assert [line["action"].split(" (")[0] for line in nginx[:3]] == ["start nginx"] * 3
    assert all(line["result"].startswith("start failed") for line in nginx[:3])
    assert len(nginx) == 4 and nginx[3]["action"].startswith("marked FAILED")
    assert state["services"]["nginx"]["state"] == FAILED
    mails = monitor.incidents.runner.inputs  # type: ignore[attr-defined]
    assert len(mails) == 2  # the first restart, then rate-limited, then the FAILED alert
    assert "FAILED: service:nginx" in mails[1]
    # Repaired by hand: healthy again -> OK, one recovery line, restarts counted afresh.
    manager.fail_start.clear()
    world.down.clear()
    monitor.cycle(state)
    assert state["services"]["nginx"]["state"] == OK
    assert lines(tmp_path)[-1]["evidence"].startswith("healthy again")


def test_a_soft_failure_needs_two_cycles_and_gets_a_restart(tmp_path: Path) -> None:
    world, manager = World(), FakeManager()
    monitor = make_monitor(tmp_path, world, manager)
    flaky = {"count": 0}

    def probe(spec: ServiceSpec, procs: dict[int, Proc]) -> Health:
        if spec.name == "nginx" and flaky["count"] < 2:
            flaky["count"] += 1
            return Health(False, "GET http://127.0.0.1/nginx_status: timed out",
                          masters=[Proc(100, "nginx", 1, 0)])
        return Health(True, "up", masters=[Proc(100, spec.process, 1, 0)])

    monitor.probe = probe
    state = state_file.empty()
    monitor.cycle(state)
    assert manager.actions == []
    monitor.cycle(state)
    assert manager.actions == ["restart nginx"]


def test_a_master_replaced_behind_the_monitors_back_is_an_incident(tmp_path: Path) -> None:
    world, manager = World(), FakeManager()
    monitor = make_monitor(tmp_path, world, manager)
    state = state_file.empty()
    monitor.cycle(state)
    world.pids["nginx"] = 200
    monitor.cycle(state)
    [line] = lines(tmp_path)
    assert "replaced by PID 200" in line["evidence"] and line["action"] == "none"
    world.pids["nginx"] = 300
    monitor.rebaseline = True  # after the installer held its lock: no incident
    monitor.cycle(state)
    assert len(lines(tmp_path)) == 1


def test_nothing_is_touched_while_the_installer_holds_its_lock(tmp_path: Path) -> None:
    world, manager = World(down={"nginx"}, load=3.0), FakeManager()
    monitor = make_monitor(tmp_path, world, manager)
    monitor.may_act = lambda: False
    monitor.cycle(state_file.empty())
    assert manager.actions == [] and lines(tmp_path) == []
    assert not Path(monitor.settings.shield_flag).exists()


def test_load_levels_shield_shed_and_runaways(tmp_path: Path) -> None:
    world, manager = World(load=3.0), FakeManager()
    monitor = make_monitor(tmp_path, world, manager)
    flag = Path(monitor.settings.shield_flag)
    state = state_file.empty()
    monitor.cycle(state)
    assert flag.exists() and state["checks"]["load"] == "SPIDER"
    world.load = 2.0  # below the ratio but not below ratio x 0.9: stays on
    monitor.cycle(state)
    assert flag.exists()
    world.load = 5.0
    monitor.cycle(state)
    assert manager.actions == ["stop php8.2-fpm"]
    assert state["services"]["php8.2-fpm"]["state"] == PAUSED
    world.down.add("php8.2-fpm")
    monitor.cycle(state)  # paused: not restarted
    assert manager.actions == ["stop php8.2-fpm"]
    killed: list[int] = []
    monitor.kill = lambda pid, sig: killed.append(pid)
    monitor.snapshot = lambda: {
        os.getpid(): Proc(os.getpid(), "python3", 1, 0),
        500: Proc(500, "php8.2", 1, 0), 501: Proc(501, "wget", 1, world.now - 1),
        502: Proc(502, "php-fpm8.2", 1, 0), 503: Proc(503, "curl", 1, 0)}
    world.load = 7.0
    monitor.cycle(state)
    assert killed == [500]  # wget is too young, php-fpm and curl are not listed
    world.load = 0.1
    monitor.cycle(state)
    assert not flag.exists()
    assert manager.actions[-1] == "start php8.2-fpm"
    assert state["services"]["php8.2-fpm"]["state"] == OK
    actions = [line["action"].split(":")[0] for line in lines(tmp_path)]
    assert actions == ["crawler shield on", "PHP shed", "killed runaway CLI jobs",
                       "crawler shield off", "PHP resumed"]


def test_low_disk_is_one_incident_and_one_recovery(tmp_path: Path) -> None:
    world, manager = World(), FakeManager()
    monitor = make_monitor(tmp_path, world, manager, disk_min_pct=101.0)
    state = state_file.empty()
    monitor.cycle(state)
    monitor.cycle(state)
    disk = [line for line in lines(tmp_path) if line["check"].startswith("disk:")]
    assert len(disk) == 1 and disk[0]["action"] == "alert"
    monitor.settings = Settings(**{**monitor.settings.__dict__, "disk_min_pct": 0.0})
    monitor.cycle(state)
    disk = [line for line in lines(tmp_path) if line["check"].startswith("disk:")]
    assert len(disk) == 2 and disk[1]["result"] == OK


def test_stale_files_are_found() -> None:
    assert system.is_runaway_name("php8.3", ["php"])
    assert not system.is_runaway_name("php-fpm8.3", ["php"])
    assert system.existing("/nonexistent/deeper/path") == Path("/")


def test_mail_follows_incident_email_report(tmp_path: Path) -> None:
    state = state_file.empty()
    for report, mails in (("NO", 0), ("YES", 1), ("VERBOSE", 2)):
        mailer = Mailer()
        incidents = Incidents(tmp_path / f"{report}.log", mailer, email="ops@example.org",
                              report=report, sendmail="/bin/true", min_interval_s=0)
        incidents.record(state, 1.0, "service:x", "down", "start", "ok")
        incidents.record(state, 2.0, "service:x", "up", "none", "OK", recovery=True)
        assert len(mailer.calls) == mails, report
    nobody = Mailer()
    Incidents(tmp_path / "n.log", nobody, email="", sendmail="/bin/true").record(
        state, 1.0, "c", "e", "a", "r")
    missing = Mailer()
    Incidents(tmp_path / "m.log", missing, email="a@b.c", sendmail=str(tmp_path / "none")
              ).record(state, 1.0, "c", "e", "a", "r")
    assert nobody.calls == [] and missing.calls == []


# --------------------------------------------------------------------------- the run loop


def test_the_loop_runs_every_interval_until_just_before_the_minute(tmp_path: Path) -> None:
    world, manager = World(now=60.0 * 1000 + 0.5), FakeManager()
    monitor = make_monitor(tmp_path, world, manager)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        world.now += seconds

    busy = iter([False, False, True, True] + [False] * 100)
    loop = Loop(monitor, tmp_path / "monitor.json", 10, run_until(world.now, 57),
                busy=lambda: next(busy), sleep=sleep, clock=lambda: world.now)
    ran = loop.run()
    assert ran == 4  # cycles at 0.5, 10.5, (20.5, 30.5 skipped), 40.5, 50.5
    assert world.now == pytest.approx(60000 + 50.5)
    data = state_file.load(tmp_path / "monitor.json")
    assert data["last_run"]["cycles"] == 4


def test_reset_clears_a_failed_mark_and_unknown_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "monitor.json"
    with state_file.editing(path) as data:
        data["services"]["nginx"] = {**fresh(FAILED), "restarts": [1.0, 2.0, 3.0]}
        data["services"]["redis-server"] = fresh(DOWN)
    mode = path.stat().st_mode & 0o777
    assert mode == 0o600
    with state_file.editing(path) as data:
        data["services"]["nginx"] = fresh()
    assert state_file.load(path)["services"]["nginx"]["state"] == OK


def test_with_a_pid_file_orphaned_workers_are_not_a_master(tmp_path: Path) -> None:
    pidfile = tmp_path / "fpm.pid"
    spec = ServiceSpec("php8.2-fpm", "php", "8.2", process="php-fpm8.2", pidfile=str(pidfile))
    worker = Proc(20, "php-fpm8.2", 1, 0)  # its master was killed: it still answers pings
    pidfile.write_text("10\n")
    gone = probes.check(spec, {1: Proc(1, "init", 0, 0), 20: worker}, 1)
    assert gone.hard and not gone.ok
    assert gone.evidence == f"{pidfile} names no live php-fpm8.2 (1 orphaned php-fpm8.2 left)"
    pidfile.unlink()
    assert probes.check(spec, {1: Proc(1, "init", 0, 0)}, 1).evidence == "no php-fpm8.2 process"
    pidfile.write_text("10\n")
    procs = {1: Proc(1, "init", 0, 0), 10: Proc(10, "php-fpm8.2", 1, 0),
             11: Proc(11, "php-fpm8.2", 10, 0)}
    healthy = probes.check(spec, procs, 1)
    assert healthy.ok and healthy.masters[0].pid == 10
    procs[30] = Proc(30, "php-fpm8.2", 1, 0)
    assert "2 php-fpm8.2 masters" in probes.check(spec, procs, 1).evidence


def test_a_supervisor_gets_its_start_time_before_the_monitor_starts_one(tmp_path: Path) -> None:
    world, manager = World(), FakeManager()
    spec = ServiceSpec("mariadb", "mariadb", process="mariadbd", supervisor="mysqld_safe",
                       start_s=10)
    monitor = make_monitor(tmp_path, world, manager, specs=[spec])
    monitor.probe = None  # the real probe over a fake process table
    table = {1: Proc(1, "init", 0, 0), 5: Proc(5, "mysqld_safe", 1, 0)}
    monitor.snapshot = lambda: dict(table)
    state = state_file.empty()
    monitor.cycle(state)
    world.now += 8
    monitor.cycle(state)
    assert manager.actions == []  # mysqld_safe is restarting it
    table[6] = Proc(6, "mariadbd", 5, 1)
    world.now += 1
    monitor.cycle(state)
    assert state["services"]["mariadb"]["state"] == OK and manager.actions == []
    del table[6]
    monitor.cycle(state)
    world.now += 11
    killed: list[int] = []
    monitor.kill = lambda pid, sig: killed.append(pid)
    monitor.settle = lambda pids: None
    monitor._wait_serving = lambda spec: Health(True, "up")  # type: ignore[method-assign]
    monitor.cycle(state)  # it did not come back in time: both go, one clean start
    assert killed == [5] and manager.actions == ["start mariadb"]


def test_a_failing_cycle_is_logged_and_the_loop_goes_on(tmp_path: Path) -> None:
    world, manager = World(now=60.0 * 1000), FakeManager()
    monitor = make_monitor(tmp_path, world, manager)

    def broken() -> dict[int, Proc]:
        raise RuntimeError("a probe bug")

    monitor.snapshot = broken

    def sleep(seconds: float) -> None:
        world.now += seconds

    loop = Loop(monitor, tmp_path / "monitor.json", 20, run_until(world.now, 57),
                busy=lambda: False, sleep=sleep, clock=lambda: world.now)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("barracuda.monitor")
    logger.addHandler(handler)
    try:
        assert loop.run() == 3
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records].count("check cycle failed") == 3
