"""Upgrades: the version, channel manifests (bundled, fetched with a checksum, offline),
the package-upgrade resources, scheduled upgrades, the tool's environments, snapshots and
rollback, and downgrade protection."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from installer import __version__
from installer.checkpoint import Checkpoint
from installer.config import load
from installer.converge import ROLLED_BACK
from installer.data import profiles_dir
from installer.errors import ConfigError, DataError, UsageError
from installer.facts import Facts
from installer.plan import Component
from installer.resources.base import Context, reload, restart
from installer.resources.files import File
from installer.runlog import append_versions
from installer.runner import Result
from installer.stack import schedule
from installer.stack.release import Release
from installer.state import ManagedState
from installer.target import Target
from installer.upgrade import UpgradeError, selfupdate
from installer.upgrade.channel import upgrades
from installer.upgrade.manifest import bundled, load_channel, newer, parse, version_key
from installer.upgrade.packages import PackageUpgrade, SystemUpgrade, apt_update
from installer.upgrade.snapshot import choose, last_snapshot, preview, restore
from installer.upgrade.workflow import followed, guard_downgrade
from tests.fakes import FakeRunner, FakeServices, LiveTarget

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ the version


def test_version_is_the_same_everywhere() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == __version__
    for channel in ("stable", "head"):
        assert bundled(channel).tool == __version__
    assert f"## {__version__}" in (REPO / "UPGRADE.md").read_text()


def test_versions_compare_as_numbers() -> None:
    assert newer("0.10.0", "0.9.9") and not newer("0.2.0", "0.2.0")
    assert version_key("1.2.3") == (1, 2, 3)
    with pytest.raises(DataError):
        version_key("0.2.0rc1")


# ------------------------------------------------------------------ manifests


def stable_text(**changes: object) -> str:
    data = yaml.safe_load((profiles_dir() / "channels" / "stable.yml").read_text())
    data.update(changes)
    return yaml.safe_dump(data)


def test_bundled_manifests_build_on_the_distro_profiles() -> None:
    for channel in ("stable", "head"):
        manifest = bundled(channel)
        assert manifest.bundled and manifest.channel == channel
        for codename in manifest.releases:
            release = Release.load(codename)
            assert set(manifest.php_versions(codename)) <= set(release.php_versions)


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"channel": "head"}, "is the 'head' channel, expected 'stable'"),
    ({"tool": "next"}, "tool: bad version"),
    ({"config_revision": 0}, "config_revision: expected a whole number"),
    ({"tool_sha256": "abc"}, "tool_sha256: expected 64"),
    ({"components": ["nginx", "varnish"]}, "'varnish' has no packages"),
    ({"releases": {"sid": {"php": ["8.2"]}}}, "unknown distribution release 'sid'"),
    ({"releases": {"bookworm": {"php": ["7.4"]}}}, "7.4 is not packaged for bookworm"),
    ({"releases": {"bookworm": {"php": ["8.2"], "pins": ["nginx"]}}}, "pins: expected"),
])
def test_a_malformed_manifest_is_refused(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(DataError, match=re.escape(fragment)):
        parse(stable_text(**changes), "test.yml", "stable", bundled=False)


@dataclass
class Console:
    said: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)

    def say(self, message: str) -> None:
        self.said.append(message)

    def warn(self, message: str) -> None:
        self.warned.append(message)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on 127.0.0.1 serving tmp_path/srv."""
    root = tmp_path / "srv"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def config_with(tmp_path: Path, **keys: str) -> object:
    path = tmp_path / "barracuda.cnf"
    path.write_text("".join(f'{k}="{v}"\n' for k, v in keys.items()))
    return load(path)


def test_a_fetched_manifest_is_verified(tmp_path: Path, served: tuple[Path, str]) -> None:
    root, url = served
    text = stable_text(tool="9.9.9", config_revision=7)
    (root / "stable.yml").write_text(text)
    (root / "stable.yml.sha256").write_text(
        hashlib.sha256(text.encode()).hexdigest() + "  stable.yml\n")
    config = config_with(tmp_path, _BARRACUDA_CHANNEL_URL=f"{url}/{{channel}}.yml")
    console = Console()
    manifest = load_channel("stable", config, console)  # type: ignore[arg-type]
    assert (manifest.tool, manifest.config_revision, manifest.bundled) == ("9.9.9", 7, False)
    assert manifest.record() == {"manifest": "fetched", "config_revision": "7"}
    assert "sha256 verified" in console.said[0] and not console.warned


def test_a_checksum_mismatch_is_an_error_not_a_fallback(
        tmp_path: Path, served: tuple[Path, str]) -> None:
    root, url = served
    (root / "stable.yml").write_text(stable_text(tool="9.9.9"))
    (root / "stable.yml.sha256").write_text("0" * 64 + "\n")
    config = config_with(tmp_path, _BARRACUDA_CHANNEL_URL=f"{url}/{{channel}}.yml")
    with pytest.raises(UpgradeError, match="checksum mismatch"):
        load_channel("stable", config, Console())  # type: ignore[arg-type]


def test_a_missing_checksum_falls_back_with_a_warning(
        tmp_path: Path, served: tuple[Path, str]) -> None:
    root, url = served
    (root / "stable.yml").write_text(stable_text(tool="9.9.9"))
    config = config_with(tmp_path, _BARRACUDA_CHANNEL_URL=f"{url}/{{channel}}.yml")
    console = Console()
    manifest = load_channel("stable", config, console)  # type: ignore[arg-type]
    assert manifest.bundled and manifest.tool == __version__
    assert "(HTTP 404)" in console.warned[0]


def test_offline_uses_the_bundled_manifest_and_says_so(tmp_path: Path) -> None:
    config = config_with(tmp_path, _BARRACUDA_CHANNEL_URL="http://127.0.0.1:9/{channel}.yml")
    console = Console()
    manifest = load_channel("head", config, console)  # type: ignore[arg-type]
    assert manifest.bundled and manifest.channel == "head"
    assert console.warned[0].startswith(
        "cannot read the head manifest from http://127.0.0.1:9/head.yml (connection refused)")
    assert "using the manifest bundled with this release instead" in console.warned[0]


def test_no_url_uses_the_bundled_manifest(tmp_path: Path) -> None:
    console = Console()
    manifest = load_channel("stable", config_with(tmp_path), console)  # type: ignore[arg-type]
    assert manifest.bundled and "bundled with this release" in console.said[0]
    with pytest.raises(UpgradeError, match="unknown channel"):
        load_channel("lts", config_with(tmp_path), console)  # type: ignore[arg-type]


# ------------------------------------------------------------------ package upgrades


SIMULATION = """NOTE: This is only a simulation!
Inst nginx [1.22.1-9] (1.22.1-9+deb12u1 Debian-Security:12/stable-security [amd64])
Inst libnginx-mod-stream [1.22.1-9] (1.22.1-9+deb12u1 Debian-Security:12/stable-security [amd64])
Conf nginx (1.22.1-9+deb12u1 Debian-Security:12/stable-security [amd64])
"""


def apt_runner(installed: set[str], update_rc: int = 0) -> FakeRunner:
    """apt-get -s answers SIMULATION until an upgrade ran."""
    return FakeRunner(installed, pending=SIMULATION, update_rc=update_rc)


def live_ctx(tmp_path: Path, runner: FakeRunner) -> Context:
    target = LiveTarget(tmp_path)
    (tmp_path / "usr/sbin").mkdir(parents=True, exist_ok=True)
    (tmp_path / "var/lib/dpkg").mkdir(parents=True, exist_ok=True)
    (tmp_path / "var/lib/dpkg/status").touch()
    return Context(target=target, runner=runner, facts=Facts(target, runner),
                   services=FakeServices(), state=ManagedState.load(target),
                   backup_dir=tmp_path / "moved")


def test_package_upgrade_plans_moves_applies_once_and_converges(tmp_path: Path) -> None:
    runner = apt_runner({"nginx"})
    ctx = live_ctx(tmp_path, runner)
    resource = PackageUpgrade("nginx", ["nginx", "nginx-extras"], {"nginx": "1.22.1-9+deb12u1"},
                              notify=(restart("nginx"),))
    changes = resource.check(ctx)
    assert [c.action for c in changes] == ["upgrade"]
    assert "nginx 1.22.1-9 -> 1.22.1-9+deb12u1" in changes[0].reason
    simulated = runner.calls[-1]
    assert "nginx=1.22.1-9+deb12u1" in simulated and "nginx-extras" not in simulated
    resource.apply(ctx, changes)
    upgrade = runner.calls[-1]
    assert upgrade[:2] == ["apt-get", "-o"] and "--only-upgrade" in upgrade
    assert "Dpkg::Options::=--force-confold" in upgrade
    assert not (tmp_path / "usr/sbin/policy-rc.d").exists()  # put back after the transaction
    assert resource.check(ctx) == []


def test_package_upgrade_is_planned_only_on_a_live_machine(tmp_path: Path) -> None:
    runner = apt_runner({"nginx"})
    target = Target(tmp_path)
    ctx = Context(target=target, runner=runner, facts=Facts(target, runner), services=None,
                  state=ManagedState.load(target), backup_dir=tmp_path / "moved")
    assert PackageUpgrade("nginx", ["nginx"]).check(ctx) == []
    assert SystemUpgrade().check(ctx) == []
    assert runner.calls == []


def test_system_upgrade_upgrades_everything_and_converges(tmp_path: Path) -> None:
    runner = apt_runner(set())
    ctx = live_ctx(tmp_path, runner)
    changes = SystemUpgrade().check(ctx)
    assert changes and changes[0].reason.startswith("2 packages: nginx")
    SystemUpgrade().apply(ctx, changes)
    assert "upgrade" in runner.calls[-1] and "-y" in runner.calls[-1]
    assert SystemUpgrade().check(ctx) == []


def test_apt_update_failure_is_a_warning(tmp_path: Path) -> None:
    ctx = live_ctx(tmp_path, apt_runner(set(), update_rc=100))
    warning = apt_update(ctx)
    assert warning and "Could not resolve" in warning and not ctx.apt_updated
    ok = live_ctx(tmp_path, apt_runner(set()))
    assert apt_update(ok) is None and ok.apt_updated


def test_each_component_restarts_only_its_own_service() -> None:
    release = Release.load("bookworm")
    component = upgrades(bundled("stable"), release, ("8.2",))
    notify = {r.id: r.notify for r in component.resources}
    assert notify["upgrade:nginx"] == (restart("nginx"),)
    assert notify["upgrade:php8.2"] == (restart("php8.2-fpm"),)
    assert notify["upgrade:mariadb"] == (restart("mariadb"),)


# ------------------------------------------------------------------ scheduled upgrades


def test_scheduled_upgrades_render_two_cron_lines(tmp_path: Path) -> None:
    config = config_with(tmp_path, _AUTO_UP_WEEKLY="7", _AUTO_UP_MONTH="2", _AUTO_UP_DAY="29",
                         _AUTO_VER="head")
    lines = [job.line() for job in schedule.jobs(config)]  # type: ignore[arg-type]
    assert re.search(r"\n\d+ \d+ \* \* 7 root barracuda up-head system --yes --quiet\n$",
                     lines[0])
    assert re.search(r"\n\d+ \d+ 29 2 \* root barracuda up-head --yes --quiet\n$", lines[1])
    empty = schedule.component(config_with(tmp_path))  # type: ignore[arg-type]
    assert [r.id for r in empty.resources] == ["absent:/etc/cron.d/barracuda-upgrade"]


def test_an_impossible_date_is_a_config_error(tmp_path: Path) -> None:
    config = config_with(tmp_path, _AUTO_UP_WEEKLY="1", _AUTO_UP_MONTH="4", _AUTO_UP_DAY="31",
                         _AUTO_VER="stable")
    with pytest.raises(ConfigError) as raised:
        schedule.jobs(config)  # type: ignore[arg-type]
    assert str(raised.value).endswith(
        ':3: _AUTO_UP_DAY: bad value "31": expected a day that month 4 has (1 to 30)')
    assert raised.value.exit_code == 3


# ------------------------------------------------------------------ tool environments


def make_env(envs: Path, name: str) -> Path:
    env = envs / name
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "barracuda").write_text("#!/bin/sh\n")
    return env


def test_switch_is_atomic_and_keeps_the_previous(tmp_path: Path) -> None:
    link = tmp_path / "barracuda"
    envs = selfupdate.envs_dir(link)
    first, second = make_env(envs, "0.2.0-aaa"), make_env(envs, "0.2.1-bbb")
    with pytest.raises(UpgradeError, match="not a symlink"):
        selfupdate.switch(second, link)
    link.symlink_to(first)
    assert selfupdate.switch(second, link) == first
    assert link.is_symlink() and selfupdate.current_env(link) == second
    assert selfupdate.previous_env(link) == first
    assert selfupdate.switch(second, link) is None  # already there
    assert selfupdate.switch(first, link) == second
    assert selfupdate.previous_env(link) == second


def test_prune_keeps_the_live_and_the_previous(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    link = tmp_path / "barracuda"
    envs = selfupdate.envs_dir(link)
    made = [make_env(envs, f"0.{i}.0-x") for i in range(6)]
    link.symlink_to(made[0])
    selfupdate.switch(made[1], link)
    removed = selfupdate.prune(link)
    left = {p.name for p in envs.iterdir() if not p.is_symlink()}
    assert {"0.0.0-x", "0.1.0-x"} <= left and len(removed) == 6 - len(left)


def test_a_wheel_must_match_the_manifest_checksum(tmp_path: Path,
                                                  served: tuple[Path, str]) -> None:
    root, url = served
    (root / "barracuda-9.9.9-py3-none-any.whl").write_bytes(b"not really a wheel")
    with pytest.raises(UpgradeError, match="does not match the manifest's tool_sha256"):
        selfupdate.fetch_wheel(f"{url}/barracuda-9.9.9-py3-none-any.whl", tmp_path, "0" * 64)
    good = hashlib.sha256(b"not really a wheel").hexdigest()
    path = selfupdate.fetch_wheel(f"{url}/barracuda-9.9.9-py3-none-any.whl", tmp_path, good)
    assert path.read_bytes() == b"not really a wheel"
    with pytest.raises(UpgradeError, match="cannot download"):
        selfupdate.fetch_wheel(f"{url}/missing-1.0-py3-none-any.whl", tmp_path, "")


# ------------------------------------------------------------------ snapshots and rollback


def test_rollback_restores_the_last_snapshot_then_the_one_before(tmp_path: Path) -> None:
    runner = apt_runner(set())
    ctx = live_ctx(tmp_path, runner)
    conf = File("/etc/demo.conf", content="new\n", notify=(reload("demo"),))
    other = File("/etc/other.conf", content="same\n", notify=(restart("other"),))
    components = [Component("demo", [conf]), Component("other", [other])]
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/demo.conf").write_text("v1\n")
    (tmp_path / "etc/other.conf").write_text("same\n")
    (tmp_path / "etc/other.conf").chmod(0o644)
    base = tmp_path / "var/backups/barracuda/checkpoints"
    older = Checkpoint(ctx.target, base / "20260101-000000-up-stable")
    older.save("/etc/demo.conf")
    (tmp_path / "etc/demo.conf").write_text("v2\n")
    # An upgrade's checkpoint: its snapshot holds every managed file, its own folder what
    # the run replaced; only what differs now is reloaded.
    newer_cp = Checkpoint(ctx.target, base / "20260102-000000-up-stable")
    snapshot = Checkpoint(ctx.target, newer_cp.directory / "snapshot")
    snapshot.save("/etc/demo.conf")
    snapshot.save("/etc/other.conf")
    newer_cp.save("/etc/demo.conf")
    newer_cp.save("/etc/new.conf")  # absent before the run
    (tmp_path / "etc/demo.conf").write_text("v3\n")
    (tmp_path / "etc/new.conf").write_text("created by the run\n")
    assert last_snapshot(ctx.target) == newer_cp.directory
    restored = restore(ctx, newer_cp.directory, components)
    assert (tmp_path / "etc/demo.conf").read_text() == "v2\n"
    assert not (tmp_path / "etc/new.conf").exists()
    assert restored.paths == ["/etc/demo.conf", "/etc/new.conf"]
    assert restored.handlers == [reload("demo")]  # other.conf did not differ: no restart
    assert ctx.services.actions == ["reload demo"]  # type: ignore[union-attr]
    assert (base / ("20260102-000000-up-stable" + ROLLED_BACK)).is_dir()
    assert last_snapshot(ctx.target) == older.directory
    # The newest run was rolled back: `barracuda rollback` refuses it, and goes further back
    # only to a run it is told.
    with pytest.raises(UsageError, match=r"^the last run, 20260102-000000-up-stable was "
                                         r"rolled back already .* newest first: "
                                         r"20260101-000000-up-stable \(name one with --run\)$"):
        choose(ctx.target)
    with pytest.raises(UsageError, match=r"^20260102-000000-up-stable was rolled back already"):
        choose(ctx.target, "20260102-000000-up-stable")
    with pytest.raises(UsageError, match=r"^no run named 2026 in "):
        choose(ctx.target, "2026")
    assert choose(ctx.target, "20260101-000000-up-stable") == older.directory
    assert preview(ctx, older.directory, components).paths == ["/etc/demo.conf"]
    restore(ctx, older.directory, components)
    assert (tmp_path / "etc/demo.conf").read_text() == "v1\n"
    assert last_snapshot(ctx.target) is None
    with pytest.raises(UsageError, match=r"rolled back already .*no other run can be rolled"):
        choose(ctx.target)


# ------------------------------------------------------------------ downgrade protection


def test_head_back_to_stable_needs_force(tmp_path: Path) -> None:
    target = Target(tmp_path)
    assert followed(target) is None
    append_versions(target, {"barracuda": __version__, "channel": "head",
                             "manifest": "fetched"})
    append_versions(target, {"barracuda": __version__, "channel": "stable"})  # an install
    assert followed(target) is not None and followed(target)[0] == "head"  # type: ignore[index]
    with pytest.raises(UsageError, match=r"this machine follows head .*barracuda stays at "
                                         r".* --force"):
        guard_downgrade(target, bundled("stable"), force=False)
    guard_downgrade(target, bundled("stable"), force=True)
    guard_downgrade(target, bundled("head"), force=False)


def test_an_older_tool_needs_force(tmp_path: Path) -> None:
    older = parse(stable_text(tool="0.0.1"), "test.yml", "stable", bundled=False)
    with pytest.raises(UsageError, match=f"barracuda {__version__} is newer than"):
        guard_downgrade(Target(tmp_path), older, force=False)
    guard_downgrade(Target(tmp_path), older, force=True)


def test_run_json_names_the_tool_environment(tmp_path: Path) -> None:
    # The snapshot of a run records where the tool ran from, for `barracuda rollback`.
    from installer.upgrade.snapshot import run_info
    directory = tmp_path / "cp"
    directory.mkdir()
    (directory / "run.json").write_text(json.dumps({"tool_env_before": "/opt/x"}))
    assert run_info(directory)["tool_env_before"] == "/opt/x"
    assert run_info(tmp_path) == {}


# ------------------------------------------------------------------ the commands


def cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BARRACUDA_")}
    environ["BARRACUDA_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", "installer.cli.barracuda", *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=environ, timeout=120, check=False)


def test_up_stable_twice_then_rollback_under_root(tmp_path: Path) -> None:
    root, config = tmp_path / "root", tmp_path / "root/root/.barracuda.cnf"
    root.mkdir()
    first = cli("up-stable", "--root", str(root), "--yes", config=config)
    assert first.returncode == 0, first.stderr
    assert "the manifest bundled with this release" in first.stderr
    assert not first.stderr.splitlines()[-1].startswith("0 changed")
    second = cli("up-stable", "--root", str(root), "--yes", config=config)
    assert second.stderr.splitlines()[-1].startswith("0 changed, "), second.stderr
    versions = (root / "var/log/barracuda/versions.log").read_text().splitlines()
    assert f"barracuda={__version__} channel=stable" in versions[-1]
    assert "manifest=bundled config_revision=" in versions[-1]
    nginx_conf = root / "etc/nginx/conf.d/barracuda.conf"
    assert nginx_conf.is_file()
    # What a rollback undoes is said first, every file; --dry-run stops there.
    dry = cli("rollback", "--root", str(root), "--dry-run", config=config)
    assert dry.returncode == 0, dry.stderr
    said = dry.stderr.splitlines()
    assert re.fullmatch(r"Rolling back \d{8}-\d{6}-up-stable \(up-stable\) restores \d+ files "
                        r"as they were before it:", said[0]), said
    assert "  /etc/nginx/conf.d/barracuda.conf" in said and nginx_conf.is_file()
    back = cli("rollback", "--root", str(root), "--yes", config=config)
    assert back.returncode == 0, back.stderr
    assert back.stderr.splitlines()[:len(said)] == said
    assert "\nRestored " in back.stderr and not nginx_conf.exists()
    again = cli("rollback", "--root", str(root), "--yes", config=config)
    assert again.returncode == 2
    assert re.fullmatch(r"error: the last run, \d{8}-\d{6}-up-stable was rolled back already "
                        r"\(it failed and undid itself, or a rollback put it back\): nothing "
                        r"of it is left to undo; no other run can be rolled back\n",
                        again.stderr), again.stderr


def test_bad_mode_and_bad_keys_are_refused_before_anything(tmp_path: Path) -> None:
    root, config = tmp_path / "root", tmp_path / "barracuda.cnf"
    root.mkdir()
    mode = cli("up-head", "aegir", "--root", str(root), "--yes", config=config)
    assert mode.returncode == 2 and 'unknown mode "aegir"' in mode.stderr
    config.write_text('_BARRACUDA_CHANNEL_URL="https://example.org/stable.yml"\n')
    bad = cli("up-stable", "--root", str(root), "--yes", config=config)
    assert bad.returncode == 3
    assert bad.stderr.strip() == (
        f'error: {config}:1: _BARRACUDA_CHANNEL_URL: bad value "https://example.org/stable.yml"'
        ": expected an http(s) URL containing {channel}, such as "
        "https://example.org/channels/{channel}.yml")
    assert list(root.iterdir()) == []
    assert cli("rollback", "--root", str(root), config=config).returncode == 2


def venv_runner(answers: str) -> FakeRunner:
    """Creates the venv directory, 'installs' by writing bin/barracuda, answers `version`
    with `answers`."""

    def answer(args: list[str]) -> Result:
        if args[1:3] == ["-m", "venv"]:
            (Path(args[-1]) / "bin").mkdir(parents=True)
        elif args[0].endswith("/bin/pip"):
            (Path(args[0]).parent / "barracuda").write_text("#!/bin/sh\n")
        elif args[-1] == "version":
            return Result(tuple(args), 0, answers + "\n")
        return Result(tuple(args), 0)

    runner = FakeRunner()
    runner.answers[()] = answer  # every command
    return runner


def test_self_update_from_a_package_index(tmp_path: Path) -> None:
    link = tmp_path / "barracuda"
    link.symlink_to(make_env(selfupdate.envs_dir(link), "0.2.0-aaa"))
    manifest = parse(stable_text(tool="9.9.9"), "test.yml", "stable", bundled=False)
    runner = venv_runner("9.9.9")
    env = selfupdate.install(manifest, "https://pypi.example.org/simple", runner, link)
    assert env.parent == selfupdate.envs_dir(link) and env.name.startswith("9.9.9-")
    venv, pip, version = runner.calls
    assert "--system-site-packages" in venv
    assert pip[-3:] == ["--index-url", "https://pypi.example.org/simple", "barracuda==9.9.9"]
    assert "--no-deps" in pip and version[-1] == "version"
    assert selfupdate.current_env(link).name == "0.2.0-aaa"  # type: ignore[union-attr]


def test_self_update_refuses_a_build_with_another_version(tmp_path: Path) -> None:
    link = tmp_path / "barracuda"
    link.symlink_to(make_env(selfupdate.envs_dir(link), "0.2.0-aaa"))
    manifest = parse(stable_text(tool="9.9.9"), "test.yml", "stable", bundled=False)
    with pytest.raises(UpgradeError, match=r"reports version 9\.9\.8, the stable channel expects"):
        selfupdate.install(manifest, "https://pypi.example.org/simple", venv_runner("9.9.8"),
                           link)
    assert sorted(p.name for p in selfupdate.envs_dir(link).iterdir()) == ["0.2.0-aaa"]
