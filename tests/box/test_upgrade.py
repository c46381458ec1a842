"""Upgrades on one fresh box (systemd-bookworm): the previous release (the last
commit before pyproject.toml's version changed) installed with its own `./install.sh --yes`,
then this checkout's `./install.sh --yes` over it, then releases built in the box from the
same sources with newer versions (a good one that changes an Nginx template, a broken one
whose template fails `nginx -t`), served with their channel manifests by
`python3 -m http.server` on 127.0.0.1 inside the box.

The tests run in order and share the box: each starts from the state the previous one left.
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer import __version__
from tests.box.boxes import Box, start_box
from tests.box.conftest import finish_box

REPO = Path(__file__).resolve().parents[2]
PORT = 8765
SRV = "/root/srv"
GOOD, BROKEN = "9.0.1", "9.0.2"  # test releases, newer than anything real
MARK = "# upgrade test release"
NGINX_CONF = "/etc/nginx/conf.d/barracuda.conf"
CHANNEL_URL = f"http://127.0.0.1:{PORT}/channels/{{channel}}.yml"
WHEEL_URL = f"http://127.0.0.1:{PORT}/wheels/barracuda-{{version}}-py3-none-any.whl"

# Build a release VERSION of this checkout in the box (BROKEN=1: its Nginx template fails
# nginx -t), as a wheel under $SRV/wheels, with its channel manifests under $SRV/release-V.
BUILD = r"""
set -eu
v=$1; broken=$2; w=/root/release-$v
rm -rf "$w"; cp -r /root/barracuda "$w"; cd "$w"
sed -i "s/^version = .*/version = \"$v\"/" pyproject.toml
sed -i "s/^__version__ = .*/__version__ = \"$v\"/" installer/__init__.py
sed -i "s/^tool: .*/tool: \"$v\"/" profiles/channels/stable.yml profiles/channels/head.yml
echo "$MARK $v" >> templates/nginx/barracuda.conf.j2
[ "$broken" = 1 ] && echo "this_is_not_a_directive on;" >> templates/nginx/barracuda.conf.j2
mkdir -p "$SRV/wheels" "$SRV/release-$v"
cp profiles/channels/stable.yml profiles/channels/head.yml "$SRV/release-$v/"
/opt/barracuda/bin/pip wheel -q --no-deps --no-build-isolation --no-index \
    --disable-pip-version-check -w "$SRV/wheels" "$w" >/dev/null
"""

SITE = "site.example.org"  # an octopus site on instance o1
SITE_BODY = "site ok"
# GET the master's /health and the octopus site in turn, every 50 ms, until /root/loop.stop
# appears (at most 15 minutes).
LOOP = r"""
import json, os, time, urllib.request
ok, failed, errors = 0, 0, []
deadline = time.time() + 900
asks = [("http://127.0.0.1/health", {}, lambda body: json.loads(body)["status"] == "ok"),
        ("http://127.0.0.1/", {"Host": "%(site)s"}, lambda body: body == b"%(body)s")]
turn = 0
while not os.path.exists("/root/loop.stop") and time.time() < deadline:
    url, headers, good = asks[turn %% 2]
    turn += 1
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=5) as answer:
            if answer.status == 200 and good(answer.read()):
                ok += 1
            else:
                failed += 1
                errors.append(f"{url} {headers} HTTP {answer.status}")
    except Exception as exc:
        failed += 1
        errors.append(f"{time.strftime('%%T')} {url} {headers} {exc}")
    time.sleep(0.05)
with open("/root/loop.json.part", "w") as out:  # renamed: a reader never sees half of it
    json.dump({"ok": ok, "failed": failed, "errors": errors[:20]}, out)
os.replace("/root/loop.json.part", "/root/loop.json")
"""


def summary(output: str) -> str:
    lines = [line for line in output.splitlines() if re.match(r"\d+ changed, ", line)]
    assert lines, output[-3000:]
    return lines[-1]


def publish(box: Box, version: str, channel: str = "stable") -> None:
    """Make the channel manifest served in the box the one of release `version`."""
    box.run(["sh", "-c", f'set -e; mkdir -p {SRV}/channels; cd {SRV}/channels; '
             f'cp {SRV}/release-{version}/{channel}.yml {channel}.yml; '
             f'sha256sum {channel}.yml > {channel}.yml.sha256'])


def set_keys(box: Box, **keys: str) -> None:
    text = box.read_file("/root/.barracuda.cnf")
    for key, value in keys.items():
        text = re.sub(rf"(?m)^{key}=.*\n", "", text) + f'{key}="{value}"\n'
    box.write_file("/root/.barracuda.cnf", text, 0o600)


def sql(box: Box, query: str) -> str:
    return box.run(["mysql", "-N", "-B", "-e", query]).stdout.strip()


def health(box: Box) -> dict[str, object]:
    """The master's /health answer; the octopus site's page must be served too."""
    site = box.run(["curl", "-s", "-H", f"Host: {SITE}", "http://127.0.0.1/"], check=False)
    assert site.stdout == SITE_BODY, site.stdout[-500:]
    out = box.run(["curl", "-s", "http://127.0.0.1/health"], check=False).stdout
    return dict(json.loads(out)) if out.startswith("{") else {"raw": out}


def previous_release(dest: Path) -> str | None:
    """Unpack the last commit of the previous release into `dest`; its version, or None
    when the checkout has no history to find it in."""
    def git(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["git", "-c", "safe.directory=*", "-C", str(REPO), *args],
                              capture_output=True, check=False)

    bump = git("log", "-1", "--format=%H", "-G", "^version = ", "--", "pyproject.toml")
    commit = bump.stdout.decode().strip()
    if bump.returncode or not commit:
        return None
    archive = git("archive", "--format=tar", f"{commit}^")
    if archive.returncode:
        return None
    dest.mkdir(parents=True)
    tar_path = dest.with_suffix(".tar")
    tar_path.write_bytes(archive.stdout)
    with tarfile.open(tar_path) as tar:
        tar.extractall(dest, filter="data")
    found = re.search(r'(?m)^version = "(.*)"', (dest / "pyproject.toml").read_text())
    return found.group(1) if found else None


def main_pids(box: Box) -> dict[str, str]:
    """The main process of each service (a reload keeps it, a restart replaces it)."""
    return {name: box.run(["pidof", name], check=False).stdout.strip()
            for name in ("mariadbd", "redis-server")} | {
        "nginx": box.read_file("/run/nginx.pid").strip(),
        "php-fpm": box.run("cat /run/php/php*-fpm.pid").stdout.strip()}


@pytest.fixture(scope="module")
def upgrade_box(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[Box]:
    """One systemd-bookworm box, whatever BOX_VARIANTS says: the upgrade path does not
    depend on the init system, and CI time is shared."""
    box = start_box("systemd", "bookworm")
    try:
        yield box
    finally:
        finish_box(box, request.config)


@pytest.fixture(scope="module")
def box(upgrade_box: Box, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    variant_box = upgrade_box
    started = time.monotonic()
    old = tmp_path_factory.mktemp("previous") / "release"
    old_version = previous_release(old)
    if old_version:
        variant_box.install_project(old)
        assert variant_box.run(["barracuda", "version"]).stdout.strip() == old_version
        variant_box.run(["rm", "-rf", "/root/barracuda"])
        print(f"\n[test_upgrade] installed the previous release {old_version} first")
    else:
        print("\n[test_upgrade] no git history: the previous release is not installed first")
    variant_box.install_project(REPO)
    variant_box.run(["sh", "-c", "command -v curl || apt-get install -y -q curl"])
    for version, broken in ((GOOD, 0), (BROKEN, 1)):
        variant_box.run(["sh", "-c", BUILD, "build", version, str(broken)],
                        env={"SRV": SRV, "MARK": MARK})
    variant_box.run(["sh", "-c", f"setsid -f python3 -m http.server {PORT} --bind 127.0.0.1 "
                     f"--directory {SRV} >/root/srv.log 2>&1 </dev/null"])
    variant_box.write_file("/root/loop.py", LOOP % {"site": SITE, "body": SITE_BODY})
    variant_box.write_file("/root/platform-web/index.php", f"<?php echo '{SITE_BODY}';\n")
    for args in (["install", "o1", "--email", f"ops@{SITE}"],
                 ["platform", "add", "o1", "web", "--path", "/root/platform-web"],
                 ["site", "add", "o1", SITE, "--platform", "web"]):
        variant_box.run(["octopus", *args, "--yes"])
    set_keys(variant_box, _BARRACUDA_CHANNEL_URL=CHANNEL_URL, _BARRACUDA_TOOL_SOURCE=WHEEL_URL)
    yield variant_box
    print(f"\n[test_upgrade] box time {time.monotonic() - started:.0f} s")


def test_install_lays_out_versioned_environments(box: Box) -> None:
    link = box.run(["readlink", "/opt/barracuda"]).stdout.strip()
    assert link.startswith(f"/opt/barracuda-envs/{__version__}-"), link
    assert box.run(["barracuda", "version"]).stdout.strip() == __version__
    # The previous release's plain /opt/barracuda was moved aside and is kept for rollback.
    previous = box.run(["readlink", "-f", "/opt/barracuda-envs/previous"], check=False)
    if box.run("ls -d /opt/barracuda-envs/legacy-*", check=False).returncode == 0:
        assert "/opt/barracuda-envs/legacy-" in previous.stdout


def test_up_stable_updates_the_tool_and_keeps_serving(box: Box) -> None:
    sql(box, "CREATE DATABASE upgtest; CREATE TABLE upgtest.t (v VARCHAR(20)); "
             "INSERT INTO upgtest.t VALUES ('kept')")
    publish(box, GOOD)
    old_env = box.run(["readlink", "-f", "/opt/barracuda"]).stdout.strip()
    box.run(["rm", "-f", "/root/loop.stop", "/root/loop.json"])
    box.run(["sh", "-c", "setsid -f python3 /root/loop.py >/root/loop.log 2>&1 </dev/null"])
    time.sleep(1)
    pids = main_pids(box)
    try:
        result = box.run(["barracuda", "up-stable", "--yes"], check=False)
    finally:
        box.run(["touch", "/root/loop.stop"])
    # The loop ends after its request in flight (at most its 5 s timeout), however slow the
    # machine: wait for its report by a deadline, not a count of polls.
    deadline = time.monotonic() + 60
    while (box.run(["test", "-s", "/root/loop.json"], check=False).returncode != 0
           and time.monotonic() < deadline):
        time.sleep(0.1)
    loop = json.loads(box.read_file("/root/loop.json"))
    print(f"\n[test_upgrade] request loop during up-stable: {loop['ok']} ok, "
          f"{loop['failed']} failed {loop['errors']}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Updating barracuda {__version__} -> {GOOD}" in result.stderr
    line = summary(result.stderr)
    assert ", 0 failed in " in line and not line.startswith("0 changed"), line
    assert loop["failed"] == 0 and loop["ok"] > 20, loop
    assert "Health: every service the monitor watches answers" in result.stderr
    assert box.run(["barracuda", "version"]).stdout.strip() == GOOD
    assert box.run(["readlink", "-f", "/opt/barracuda-envs/previous"]).stdout.strip() == old_env
    assert f"{MARK} {GOOD}" in box.read_file(NGINX_CONF)
    assert sql(box, "SELECT v FROM upgtest.t") == "kept"
    # Only Nginx's configuration changed (and it was reloaded, not restarted): no service
    # was restarted, as no package moved on this freshly installed box.
    assert main_pids(box) == pids, (pids, result.stderr[-3000:])
    assert health(box)["status"] == "ok"
    last = box.read_file("/var/log/barracuda/versions.log").splitlines()[-1]
    assert f"barracuda={GOOD} channel=stable" in last and "manifest=fetched" in last, last
    snapshot = box.run("ls -d /var/backups/barracuda/checkpoints/*-up-stable").stdout.split()
    assert len(snapshot) == 1
    saved = json.loads(box.read_file(f"{snapshot[0]}/snapshot/manifest.json"))
    replaced = json.loads(box.read_file(f"{snapshot[0]}/manifest.json"))
    assert NGINX_CONF in replaced and len(replaced) < len(saved), replaced
    # Every managed file is in the snapshot, not only those the run replaced.
    managed = json.loads(box.read_file("/var/lib/barracuda/managed.json"))["files"]
    assert set(managed) <= set(saved), set(managed) - set(saved)


def test_second_up_stable_changes_nothing(box: Box) -> None:
    result = box.run(["barracuda", "up-stable", "--yes"])
    assert summary(result.stderr).startswith("0 changed, "), result.stderr[-3000:]
    assert "Updating barracuda" not in result.stderr


def test_broken_template_is_rolled_back(box: Box) -> None:
    before = box.read_file(NGINX_CONF)
    publish(box, BROKEN)
    try:
        result = box.run(["barracuda", "up-stable", "--yes"], check=False)
    finally:
        publish(box, GOOD)
    assert result.returncode == 1, result.stderr[-3000:]
    error = result.stderr.strip().splitlines()
    print(f"\n[test_upgrade] broken release: rc {result.returncode}: {error[-2:]}")
    assert any(line.startswith("error: ") and "nginx -t failed on the staged change, before "
               "anything was changed" in line for line in error), result.stderr[-3000:]
    assert "warning: barracuda is back at " in result.stderr
    assert box.read_file(NGINX_CONF) == before
    assert box.run(["barracuda", "version"]).stdout.strip() == GOOD
    assert box.run(["nginx", "-t"], check=False).returncode == 0
    assert health(box)["status"] == "ok"


def test_offline_uses_the_bundled_manifest(box: Box) -> None:
    set_keys(box, _BARRACUDA_CHANNEL_URL="http://127.0.0.1:9/channels/{channel}.yml")
    try:
        result = box.run(["barracuda", "up-stable", "--yes"], check=False)
    finally:
        set_keys(box, _BARRACUDA_CHANNEL_URL=CHANNEL_URL)
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"\n[test_upgrade] offline: {result.stderr.splitlines()[0]}")
    assert ("warning: cannot read the stable manifest from http://127.0.0.1:9/channels/"
            "stable.yml (connection refused): offline?") in result.stderr
    assert "using the manifest bundled with this release instead" in result.stderr
    assert summary(result.stderr).startswith("0 changed, ")
    last = box.read_file("/var/log/barracuda/versions.log").splitlines()[-1]
    assert "manifest=bundled" in last


def test_head_back_to_stable_needs_force(box: Box) -> None:
    publish(box, GOOD, "head")
    head = box.run(["barracuda", "up-head", "--yes"])
    assert summary(head.stderr).startswith("0 changed, ")
    refused = box.run(["barracuda", "up-stable", "--yes"], check=False)
    assert refused.returncode == 2, refused.stderr[-2000:]
    message = refused.stderr.strip().splitlines()[-1]
    print(f"\n[test_upgrade] head -> stable: rc {refused.returncode}: {message}")
    assert message.startswith(f"error: this machine follows head (barracuda {GOOD}"), message
    assert "--force" in message
    forced = box.run(["barracuda", "up-stable", "--yes", "--force"])
    assert summary(forced.stderr).startswith("0 changed, ")


def test_preflight_refuses_held_packages_before_any_change(box: Box) -> None:
    box.run(["apt-mark", "hold", "redis-server"])
    publish(box, BROKEN)  # a self-update would be due: the refusal must come first
    try:
        result = box.run(["barracuda", "up-stable", "--yes"], check=False)
    finally:
        box.run(["apt-mark", "unhold", "redis-server"])
        publish(box, GOOD)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: held packages: redis-server; barracuda manages them: "
        "`apt-mark unhold redis-server`, then run again")
    assert "Updating barracuda" not in result.stderr
    assert box.run(["barracuda", "version"]).stdout.strip() == GOOD


def test_system_mode_plans_operating_system_packages_only(box: Box) -> None:
    result = box.run(["barracuda", "up-stable", "system", "--dry-run"])
    assert "Plan: nothing to change." in result.stderr or re.search(
        r"\[system\] upgrade:system: upgrade: \d+ packages", result.stderr), result.stderr
    assert "[nginx]" not in result.stderr
    bad = box.run(["barracuda", "up-stable", "aegir"], check=False)
    assert bad.returncode == 2 and 'unknown mode "aegir"' in bad.stderr


def test_rollback_restores_the_snapshot_and_the_tool(box: Box) -> None:
    # The newest run that changed something is the broken release, which rolled itself
    # back: rollback refuses it (nothing of it is left) and names the runs it can undo.
    refused = box.run(["barracuda", "rollback", "--yes"], check=False)
    assert refused.returncode == 2, refused.stderr[-2000:]
    message = refused.stderr.strip().splitlines()[-1]
    assert re.match(r"error: the last run, \d{8}-\d{6}-up-stable was rolled back already",
                    message), message
    found = re.search(r"newest first: ([0-9a-z-]+)", message)
    assert found and found.group(1).endswith("-up-stable"), message
    assert MARK in box.read_file(NGINX_CONF)  # refused: nothing changed
    # The good release's run, named: what it undoes is listed first, then done.
    result = box.run(["barracuda", "rollback", "--yes", "--run", found.group(1)])
    said = result.stderr.splitlines()
    assert said[0].startswith(f"Rolling back {found.group(1)} (up-stable) restores "), said
    assert f"  {NGINX_CONF}" in said and "then runs reload nginx" in said, said
    assert f"Restored {NGINX_CONF}" in result.stderr, result.stderr
    assert "then ran reload nginx" in result.stderr and "restart" not in result.stderr
    assert MARK not in box.read_file(NGINX_CONF)
    assert box.run(["barracuda", "version"]).stdout.strip() == __version__
    assert health(box)["status"] == "ok"
    again = box.run(["barracuda", "install", "--yes"])
    assert summary(again.stderr).startswith("0 changed, "), again.stderr[-3000:]


def test_scheduled_upgrades_are_a_managed_cron_line(box: Box) -> None:
    set_keys(box, _AUTO_UP_WEEKLY="3", _AUTO_UP_MONTH="2", _AUTO_UP_DAY="30", _AUTO_VER="stable")
    bad = box.run(["barracuda", "install", "--yes"], check=False)
    assert bad.returncode == 3, bad.stderr[-2000:]
    assert re.search(r'\.barracuda\.cnf:\d+: _AUTO_UP_DAY: bad value "30"', bad.stderr)
    set_keys(box, _AUTO_UP_DAY="14")
    box.run(["barracuda", "install", "--yes"])
    cron = box.read_file("/etc/cron.d/barracuda-upgrade")
    assert re.search(r"(?m)^\d+ \d+ \* \* 3 root barracuda up-stable system --yes", cron), cron
    assert re.search(r"(?m)^\d+ \d+ 14 2 \* root barracuda up-stable --yes", cron), cron
    again = box.run(["barracuda", "install", "--yes"])
    assert summary(again.stderr).startswith("0 changed, ")
