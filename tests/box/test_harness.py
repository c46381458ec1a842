"""Tests of the fresh-box harness itself (boxes.py, rootfs.py, nsenter_backend.py)."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

from . import rootfs
from .boxes import (
    CGROUP_ROOTS,
    NSPAWN_RUN,
    Box,
    BoxCommandError,
    BoxError,
    Proc,
)
from .conftest import BoxFactory


def mirror_ip() -> str:
    host, _port = rootfs.host_mirrors().endpoints()[0]
    return str(socket.getaddrinfo(host, 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])


def assert_network_isolated(box: Box) -> None:
    links = box.run(["ip", "-o", "link", "show"]).stdout.splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo"]
    ip = str(ipaddress.ip_address(mirror_ip()))
    probe = box.run(["timeout", "10", "bash", "-c", 'exec 3<>"/dev/tcp/$1/80"', "probe", ip],
                    check=False)
    assert probe.returncode != 0, f"the box reached {ip}:80 directly"
    assert "unreachable" in probe.stderr.lower(), probe.stderr


def assert_apt_works(box: Box) -> None:
    out = box.run(["apt-get", "update"], timeout=300)
    assert f"{box.release}-security" in out.stdout
    assert "Err:" not in out.stdout and "W:" not in out.stderr, out.stdout + out.stderr
    policy = box.run(["apt-cache", "policy", "hello"]).stdout
    assert "Candidate: (none)" not in policy and "Candidate:" in policy


@pytest.mark.parametrize("release", ["bookworm", "trixie"])
def test_systemd_box_boots_systemd(box_factory: BoxFactory, release: str,
                                   tmp_path: Path) -> None:
    box = box_factory("systemd", release)
    host = box.host
    assert box.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
    assert host.file("/run/systemd/system").is_directory
    state = box.run(["systemctl", "is-system-running"], check=False).stdout.strip()
    assert state in ("running", "degraded"), box.run("systemctl --failed", check=False).stdout
    codename = host.check_output(". /etc/os-release && echo $VERSION_CODENAME")
    assert codename == release
    assert host.check_output("hostname") == box.name != os.uname().nodename
    assert not host.exists("python3"), "the rootfs must not ship python3"
    assert_network_isolated(box)
    assert_apt_works(box)

    assert type(host.service("cron")).__name__ == "SystemdService"
    assert host.service("cron").is_running and host.service("cron").is_enabled
    assert host.socket("tcp://127.0.0.1:3142").is_listening  # the apt bridge

    box.collect_artifacts(tmp_path)
    assert "systemd" in (tmp_path / "journal.txt").read_text()
    assert "cron" in (tmp_path / "ps.txt").read_text()
    assert "3142" in (tmp_path / "ss.txt").read_text()
    assert (tmp_path / "log" / "dpkg.log").is_file()


def test_sysv_box_runs_without_systemd(box_factory: BoxFactory, tmp_path: Path) -> None:
    box = box_factory("sysv", "bookworm")
    host = box.host
    assert box.run(["cat", "/proc/1/comm"]).stdout.strip() == "bash"
    assert not host.file("/run/systemd/system").exists
    assert "systemd" in host.file("/sbin/init").linked_to  # same rootfs, not booted
    assert box.run(["systemctl", "start", "cron"], check=False).returncode != 0
    assert host.check_output("hostname") == box.name
    assert_network_isolated(box)
    assert_apt_works(box)

    assert type(host.service("cron")).__name__ == "SysvService"
    assert not host.service("cron").is_running
    box.run(["service", "cron", "start"])
    assert host.service("cron").is_running and host.service("cron").is_enabled
    assert host.process.get(comm="cron").user == "root"
    assert host.socket("tcp://127.0.0.1:3142").is_listening

    box.collect_artifacts(tmp_path)
    assert "cron" in (tmp_path / "ps.txt").read_text()
    assert not (tmp_path / "journal.txt").exists()
    assert (tmp_path / "log" / "dpkg.log").is_file()


def test_boxes_are_isolated_from_each_other(box_factory: BoxFactory) -> None:
    first, second = box_factory("systemd"), box_factory("systemd")
    first.write_file("/etc/barracuda-marker", "first\n", 0o600)
    assert first.read_file("/etc/barracuda-marker") == "first\n"
    assert first.host.file("/etc/barracuda-marker").mode == 0o600
    assert not second.host.file("/etc/barracuda-marker").exists
    assert first.root != second.root and first.name != second.name
    assert second.host.check_output("hostname") == second.name
    first.run("setsid -f sleep 4242")
    assert first.run(["pgrep", "-f", "sleep 4242"], check=False).returncode == 0
    assert second.run(["pgrep", "-f", "sleep 4242"], check=False).returncode == 1
    # each container runs in its own cgroup (not a shared /payload)
    for box in (first, second):
        assert f"/nspawn-{box.name}/" in Path(f"/proc/{box.leader}/cgroup").read_text()
    # separate network namespaces, neither of them the host's
    netns = {os.readlink(f"/proc/{box.leader}/ns/net") for box in (first, second)}
    assert len(netns) == 2 and os.readlink("/proc/self/ns/net") not in netns


def test_run_copy_and_install_project(box_factory: BoxFactory, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BARRACUDA_BOX_ARTIFACTS", str(tmp_path / "artifacts"))
    box = box_factory("sysv", "bookworm")
    with pytest.raises(BoxCommandError) as failure:
        box.run("echo to-stdout; echo to-stderr >&2; exit 3")
    message = str(failure.value)
    assert "rc 3" in message and "exit 3" in message
    assert "to-stdout" in message and "to-stderr" in message
    assert box.run("exit 4", check=False).returncode == 4
    assert box.run(["cat"], input="piped\n").stdout == "piped\n"
    assert box.run("echo $FOO", env={"FOO": "bar"}).stdout == "bar\n"
    with pytest.raises(BoxCommandError, match="timed out"):
        box.run(["sleep", "30"], timeout=1)
    # a daemon that keeps our stdout open must not make run() wait for it
    assert box.run("sleep 300 & echo started", timeout=20).stdout == "started\n"
    assert box.host.run("sleep 301 & echo started").stdout == "started\n"

    project = tmp_path / "project"
    (project / "lib").mkdir(parents=True)
    (project / "lib" / "data.txt").write_text("data\n")
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "python").write_text("junk")
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "x.cpython-311.pyc").write_text("junk")
    installer = project / "install.sh"
    installer.write_text(
        "#!/bin/sh\n"
        'echo "args:$*"\n'
        'echo "frontend:${DEBIAN_FRONTEND:-unset} pwd:$(pwd)"\n'
        'echo "some warning" >&2\n'
        'if [ "$1" = "--fail" ]; then exit 7; fi\n'
        "cat lib/data.txt\n")
    installer.chmod(0o755)

    single = tmp_path / "single.conf"
    single.write_text("x=1\n")
    single.chmod(0o640)
    box.copy_in(single, "/etc/barracuda/single.conf")
    assert box.host.file("/etc/barracuda/single.conf").mode == 0o640
    assert box.read_file("/etc/barracuda/single.conf") == "x=1\n"

    result = box.install_project(project)
    assert "args:--yes" in result.stdout
    assert "frontend:unset pwd:/root/barracuda" in result.stdout
    assert "data" in result.stdout and "some warning" in result.stderr
    listing = box.run(["find", "/root/barracuda", "-printf", "%P\n"]).stdout.split()
    assert sorted(listing) == ["install.sh", "lib", "lib/data.txt"]
    log = (box.artifacts_dir / "install-1.log").read_text()
    assert "./install.sh --yes" in log and "args:--yes" in log and "some warning" in log

    with pytest.raises(BoxCommandError, match=r"rc 7"):
        box.install_project(project, ["--fail", "with space"])
    assert "args:--fail with space" in (box.artifacts_dir / "install-2.log").read_text()


def test_stop_leaves_nothing(box_factory: BoxFactory) -> None:
    started = [box_factory("systemd", "bookworm"), box_factory("sysv", "bookworm")]
    for box in started:
        box.run("setsid -f sleep 4343")
    procs = {box.name: list(box._procs.values()) for box in started}
    for box in started:
        box.stop()
        box.stop()  # idempotent
        assert not any(proc.alive() for proc in procs[box.name]), procs[box.name]
        with pytest.raises(BoxError, match="not running"):
            box.run(["true"])
        mounts = Path("/proc/self/mountinfo").read_text()
        assert str(box.dir) not in mounts
        assert not box.dir.exists() and not box.state_file.exists()
        assert not [root / f"nspawn-{box.name}" for root in CGROUP_ROOTS
                    if (root / f"nspawn-{box.name}").exists()]
        assert not (NSPAWN_RUN / "propagate" / box.name).exists()
    leftovers = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "sleep 4343" in cmdline or any(box.name in cmdline for box in started):
                leftovers.append(f"{entry.name}: {cmdline}")
    assert not leftovers


def test_variant_box(variant_box: Box, box_variant: str) -> None:
    kind, _, release = box_variant.partition("-")
    assert (variant_box.kind, variant_box.release) == (kind, release)
    host = variant_box.host
    assert host.check_output("hostname") == variant_box.name
    assert host.file("/run/systemd/system").is_directory == (kind == "systemd")
    assert host.check_output(". /etc/os-release && echo $VERSION_CODENAME") == release
    assert Proc.of(variant_box.leader or 0) is not None
