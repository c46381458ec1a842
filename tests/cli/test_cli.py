"""The CLIs as a user runs them: exit codes, messages, and what is (not) written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from installer import __version__

CORPUS = Path(__file__).resolve().parents[1] / "unit" / "config_corpus"
BAD = sorted((CORPUS / "bad").glob("*.cnf"))


def run(
    tool: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "BARRACUDA_CONFIG"}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", f"installer.cli.{tool}", *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=environ, timeout=60, check=False)


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_help_lists_commands_and_each_help_works() -> None:
    top = run("barracuda", "--help")
    assert top.returncode == 0
    for command in ("install", "status", "config", "version"):
        assert command in top.stdout
        assert run("barracuda", command, "--help").returncode == 0
    for sub in ("show", "check"):
        assert run("barracuda", "config", sub, "--help").returncode == 0
    assert "list" in run("octopus", "--help").stdout


def test_install_twice_under_root_second_changes_nothing(tmp_path: Path) -> None:
    first = run("barracuda", "install", "--root", str(tmp_path), "--yes")
    assert first.returncode == 0, first.stderr
    assert "0 failed" in first.stderr and not first.stderr.splitlines()[-1].startswith("0 changed")
    assert (tmp_path / "root/.barracuda.cnf").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data/disk").is_dir()
    second = run("barracuda", "install", "--root", str(tmp_path), "--yes")
    assert second.returncode == 0, second.stderr
    assert second.stderr.splitlines()[-1].startswith("0 changed, ")
    logs = list((tmp_path / "var/log/barracuda").glob("install-*.log"))
    assert len(logs) == 2
    versions = (tmp_path / "var/log/barracuda/versions.log").read_text().splitlines()
    assert len(versions) == 1 and f"barracuda={__version__} channel=stable" in versions[-1]


def test_dry_run_touches_nothing(tmp_path: Path) -> None:
    result = run("barracuda", "install", "--root", str(tmp_path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "config:" in result.stderr and "create" in result.stderr
    assert tree(tmp_path) == []


def test_check_exits_5_while_changes_are_pending(tmp_path: Path) -> None:
    assert run("barracuda", "install", "--root", str(tmp_path), "--check").returncode == 5
    assert run("barracuda", "install", "--root", str(tmp_path), "--yes").returncode == 0
    assert run("barracuda", "install", "--root", str(tmp_path), "--check").returncode == 0


def test_json_plan(tmp_path: Path) -> None:
    result = run("barracuda", "install", "--root", str(tmp_path), "--dry-run", "--json")
    payload = json.loads(result.stdout)
    assert payload["pending"] > 0
    assert {s["resource"] for s in payload["plan"]} >= {"dir:/data/disk", "packages:base"}


def test_no_yes_without_terminal_refuses(tmp_path: Path) -> None:
    result = run("barracuda", "install", "--root", str(tmp_path))
    assert result.returncode == 2
    assert "pass --yes" in result.stderr
    assert tree(tmp_path) == []


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_config_exits_3_with_one_line_and_writes_nothing(path: Path, tmp_path: Path) -> None:
    result = run("barracuda", "install", "--root", str(tmp_path), "--config", str(path), "--yes")
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}:"), result.stderr
    assert tree(tmp_path) == []
    check = run("barracuda", "config", "check", str(path))
    assert check.returncode == 3 and check.stderr.strip() == lines[0]


def test_config_from_environment_variable(tmp_path: Path) -> None:
    bad = BAD[0]
    result = run("barracuda", "install", "--root", str(tmp_path), "--yes",
                 env={"BARRACUDA_CONFIG": str(bad)})
    assert result.returncode == 3 and str(bad) in result.stderr


def test_config_check_and_show(tmp_path: Path) -> None:
    good = CORPUS / "good" / "boa-operator.cnf"
    check = run("barracuda", "config", "check", str(good))
    assert check.returncode == 0
    assert "OK" in check.stdout and "BOA keys ignored" in check.stdout
    missing = run("barracuda", "config", "check", str(tmp_path / "nope.cnf"))
    assert missing.returncode == 3 and "no such file" in missing.stderr
    shown = run("barracuda", "config", "show", "--config", str(good), "--json")
    settings = json.loads(shown.stdout)["settings"]
    assert settings["_MY_EMAIL"] == {"value": "ops@example.org", "source": f"{good}:4"}
    assert settings["_MONITOR_INTERVAL"]["source"] == "default"
    warned = run("barracuda", "install", "--root", str(tmp_path), "--config", str(good),
                 "--dry-run")
    assert "BOA keys barracuda does not use (ignored): _AUTOPILOT" in warned.stderr
    # CSF, BOA's csf/lfd code, now plans the nftables firewall instead of a warning.
    assert "[firewall] file:/etc/nftables.d/barracuda.nft: create" in warned.stderr
    assert "CSF" not in warned.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("barracuda", "frobnicate").returncode == 2
    missing_root = run("barracuda", "install", "--root", str(tmp_path / "nope"), "--yes")
    assert missing_root.returncode == 2


def test_status_and_octopus_list(tmp_path: Path) -> None:
    run("barracuda", "install", "--root", str(tmp_path), "--yes")
    status = run("barracuda", "status", "--root", str(tmp_path), "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert "cron" in report["services"] and len(report["last_runs"]) == 1
    assert run("octopus", "list", "--root", str(tmp_path)).stdout.strip() == "no instances"
