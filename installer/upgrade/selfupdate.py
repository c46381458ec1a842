"""The tool's own update: each version lives in its own virtual environment under
<link>-envs/ (/opt/barracuda-envs), and <link> (/opt/barracuda) is a symlink switched
atomically (a new symlink renamed over the old one). The previous environment is kept, named
by <link>-envs/previous, for `barracuda rollback`.

install.sh lays out the same tree; both install with --no-deps --no-index into a venv made
with --system-site-packages, on top of Debian's python3-* packages."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from installer.data import load_profile
from installer.errors import PreflightError
from installer.runner import Runner
from installer.upgrade import UpgradeError
from installer.upgrade.manifest import Manifest, timeouts

PREVIOUS = "previous"


def tool_link() -> Path:
    """The symlink the commands in /usr/local/sbin point through (BARRACUDA_PREFIX wins)."""
    return Path(os.environ.get("BARRACUDA_PREFIX") or load_profile("upgrade")["tool"]["link"])


def envs_dir(link: Path | None = None) -> Path:
    link = link or tool_link()
    return link.with_name(link.name + "-envs")


def current_env(link: Path | None = None) -> Path | None:
    """The environment the link points at; None when it is not a versioned layout."""
    link = link or tool_link()
    if not link.is_symlink():
        return None
    return link.resolve()


def previous_env(link: Path | None = None) -> Path | None:
    marker = envs_dir(link) / PREVIOUS
    if not marker.is_symlink():
        return None
    env = marker.resolve()
    return env if (env / "bin" / "barracuda").exists() else None


def _symlink_replace(link: Path, to: Path) -> None:
    """Point `link` at `to` with one rename: the link is never missing."""
    tmp = link.with_name(f".{link.name}.new-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(to)
    os.replace(tmp, link)


def switch(env: Path, link: Path | None = None) -> Path | None:
    """Make `env` the live environment; the one it replaces becomes `previous`. Returns it."""
    link = link or tool_link()
    old = current_env(link)
    if old is None:
        raise UpgradeError(f"{link} is not a symlink to a versioned environment; run "
                           "./install.sh --yes from a checkout once to set it up")
    if old == env.resolve():
        return None
    _symlink_replace(link, env)
    _symlink_replace(envs_dir(link) / PREVIOUS, old)
    return old


def fetch_wheel(url: str, directory: Path, sha256: str) -> Path:
    limit = int(load_profile("upgrade")["fetch"]["max_bytes"])
    name = url.rstrip("/").rsplit("/", 1)[-1]
    if not name.endswith(".whl"):
        raise UpgradeError(f"{url}: not a wheel (.whl)")
    import requests  # deferred: only a self-update downloads

    try:
        response = requests.get(url, timeout=timeouts())
        response.raise_for_status()
    except requests.RequestException as exc:
        raise UpgradeError(f"cannot download the new barracuda from {url}: {exc}") from exc
    if len(response.content) > limit:
        raise UpgradeError(f"{url}: larger than {limit} bytes")
    actual = hashlib.sha256(response.content).hexdigest()
    if sha256 and actual != sha256:
        raise UpgradeError(f"{url}: sha256 {actual} does not match the manifest's "
                           f"tool_sha256 {sha256}; refusing it")
    path = directory / name
    path.write_bytes(response.content)
    return path


def preflight(link: Path | None = None) -> None:
    """What a self-update needs before it changes anything."""
    link = link or tool_link()
    if current_env(link) is None:
        raise PreflightError(f"{link} is not a symlink to a versioned environment; run "
                             "./install.sh --yes from a checkout once to set it up")
    minimum = int(load_profile("upgrade")["min_free_tool_mib"])
    envs = envs_dir(link)
    free = shutil.disk_usage(envs if envs.exists() else link.parent).free // (1024 * 1024)
    if free < minimum:
        raise PreflightError(f"only {free} MiB free for {envs}; a self-update needs {minimum} MiB")


def install(manifest: Manifest, source: str, runner: Runner, link: Path | None = None) -> Path:
    """Install barracuda `manifest.tool` from `source` (a wheel URL, `{version}` replaced, or
    a package index) into a new environment; returns it once it answers with that version.
    The live link is not touched here: see switch()."""
    link = link or tool_link()
    envs = envs_dir(link)
    envs.mkdir(parents=True, exist_ok=True, mode=0o755)
    version = manifest.tool
    with tempfile.TemporaryDirectory(dir=envs, prefix=".download-") as tmp:
        if source.split("?")[0].endswith(".whl"):
            wheel = fetch_wheel(source.replace("{version}", version), Path(tmp),
                                manifest.tool_sha256)
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:12]
            what = [str(wheel)]
            index = ["--no-index"]
        else:
            digest = hashlib.sha256(f"{source} {version}".encode()).hexdigest()[:12]
            what = [f"barracuda=={version}"]
            index = ["--index-url", source]
        env = envs / f"{version}-{digest}"
        if env == current_env(link):
            return env
        shutil.rmtree(env, ignore_errors=True)
        # A venv is not relocatable: build it at its final path; the link moves only once
        # it answers with the expected version.
        python = getattr(sys, "_base_executable", "") or "/usr/bin/python3"
        try:
            runner.run([python, "-m", "venv", "--system-site-packages", str(env)], timeout=300)
            runner.run([str(env / "bin" / "pip"), "install", "-q", "--no-deps",
                        "--disable-pip-version-check", "--force-reinstall", *index, *what],
                       timeout=900)
            answer = runner.run([str(env / "bin" / "barracuda"), "version"], timeout=60)
        except BaseException:
            shutil.rmtree(env, ignore_errors=True)
            raise
        got = answer.output.strip().splitlines()[-1] if answer.output.strip() else ""
        if got != version:
            shutil.rmtree(env, ignore_errors=True)
            raise UpgradeError(f"the barracuda installed from {source} reports version "
                               f"{got or '(nothing)'}, the {manifest.channel} channel expects "
                               f"{version}; kept the current one")
    return env


def prune(link: Path | None = None) -> list[Path]:
    """Remove old environments, keeping the live one, the previous one and the newest few."""
    link = link or tool_link()
    envs = envs_dir(link)
    if not envs.is_dir():
        return []
    keep = int(load_profile("upgrade")["tool"]["keep_envs"])
    protected = {p for p in (current_env(link), previous_env(link)) if p is not None}
    candidates = sorted((p for p in envs.iterdir()
                         if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")),
                        key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for env in candidates[keep:]:
        if env.resolve() not in protected:
            shutil.rmtree(env, ignore_errors=True)
            removed.append(env)
    return removed


def reexec(argv: list[str], previous: Path | None) -> None:
    """Continue the same command with the new code (never returns)."""
    link = tool_link()
    os.environ["BARRACUDA_SELF_UPDATED"] = "1"
    if previous is not None:
        os.environ["BARRACUDA_PREVIOUS_ENV"] = str(previous)
    program = str(link / "bin" / "barracuda")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(program, [program, *argv])
