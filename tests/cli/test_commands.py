"""The main commands' exact output under --root: the exit code, stdout and stderr as a whole.

Only what changes from run to run is normalised: the root directory (<ROOT>), the time in
run log names (<STAMP>) and durations (<S>). Where the output lists the stack's resources
(whose set the profiles decide), every line must have the one form the CLI prints and the
lists of two commands must agree line for line."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from installer import __version__
from tests.cli.test_cli import CORPUS, run, tree

PLAN_HEAD = re.compile(r"Plan: (\d+) changes, (\d+) planned only \(not executed under --root\)")
PLAN_LINE = re.compile(r"  ([~-]) \[[\w.-]+\] (\S+): [\w-]+: .+")
PROGRESS = re.compile(r"\[(\d+)/(\d+)\] (\S+): (changed|skipped) \((.+)\)")
PLANNED_ONLY = ("{n} planned only: packages, services and commands are not executed "
                "under --root")


def normal(text: str, root: Path) -> str:
    text = text.replace(str(root), "<ROOT>")
    text = re.sub(r"\d{8}-\d{6}(-\d+)?", "<STAMP>", text)  # a second run in the same second: -2
    return re.sub(r" in \d+\.\d s", " in <S> s", text)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty tree that says it is Debian 12, whatever the machine running the tests is."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
        "VERSION_CODENAME=bookworm\n")
    return tmp_path


def changed(root: Path, before: list[str]) -> list[str]:
    """The files a command left under root (normalised), but for directories."""
    return sorted(normal(str(root / path), root).removeprefix("<ROOT>/") for path in tree(root)
                  if path not in before and not (root / path).is_dir())


def plan_lines(stderr: str) -> tuple[int, int, list[str]]:
    """(changes, planned only, the change lines) of a plan, every line checked for its form."""
    head, *lines = stderr.splitlines()
    match = PLAN_HEAD.fullmatch(head)
    assert match, head
    for line in lines:
        assert PLAN_LINE.fullmatch(line), line
    changes, planned = int(match[1]), int(match[2])
    assert [PLAN_LINE.fullmatch(line)[1] for line in lines].count("-") == planned  # type: ignore[index]
    assert len(lines) == changes + planned
    return changes, planned, lines


def test_install_check_then_yes_then_check(root: Path) -> None:
    before = tree(root)
    check = run("barracuda", "install", "--root", str(root), "--check")
    assert (check.returncode, check.stdout) == (5, "")
    changes, planned, lines = plan_lines(check.stderr)
    assert changes > 0 and planned > 0
    assert changed(root, before) == ["run/barracuda.lock", "var/log/barracuda/install-<STAMP>.log"]

    first = run("barracuda", "install", "--root", str(root), "--yes")
    assert (first.returncode, first.stdout) == (0, ""), first.stderr
    *progress, only, log, summary = normal(first.stderr, root).splitlines()
    total = int(PROGRESS.fullmatch(progress[0])[2])  # type: ignore[index]
    statuses = [PROGRESS.fullmatch(line)[4] for line in progress]  # type: ignore[index]
    assert statuses.count("changed") == changes and statuses.count("skipped") == planned
    assert only == PLANNED_ONLY.format(n=planned)
    assert log == "Log: <ROOT>/var/log/barracuda/install-<STAMP>.log"
    assert summary == f"{changes} changed, {total - changes - planned} ok, 0 failed in <S> s"

    # The second run changes nothing: only what --root cannot execute is left, and the
    # plan of --check lists exactly those, as the first plan did.
    second = run("barracuda", "install", "--root", str(root), "--yes")
    assert (second.returncode, second.stdout) == (0, ""), second.stderr
    skipped = [line for line in progress if " skipped (" in line]
    assert normal(second.stderr, root) == "\n".join([
        *skipped, PLANNED_ONLY.format(n=planned),
        "Log: <ROOT>/var/log/barracuda/install-<STAMP>.log",
        f"0 changed, {total - planned} ok, 0 failed in <S> s", ""])
    again = run("barracuda", "install", "--root", str(root), "--check")
    assert (again.returncode, again.stdout) == (0, ""), again.stderr
    assert again.stderr == "\n".join([
        f"Plan: 0 changes, {planned} planned only (not executed under --root)",
        *[line for line in lines if line.startswith("  - ")], ""])


def test_install_dry_run_shows_the_check_plan_with_tuning_and_diffs(
        root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    before = tree(root)
    # --check on a copy: its run log would be one more change to plan here
    twin = tmp_path_factory.mktemp("twin")
    shutil.copytree(root, twin, dirs_exist_ok=True)
    dry = run("barracuda", "install", "--root", str(root), "--dry-run")
    assert (dry.returncode, dry.stdout) == (0, "")
    assert tree(root) == before  # not even a run log
    check = run("barracuda", "install", "--root", str(twin), "--check")
    head, *rest = dry.stderr.splitlines()
    assert head == "Tuning for this machine:"
    notes = [line for line in rest if line.startswith("  ") and not PLAN_LINE.fullmatch(line)
             and not line.startswith("      ")]
    plan = [line for line in rest if line not in notes and not line.startswith("      ")]
    # The same plan as --check's, but for the run log's directory, which a dry run (that
    # writes no log) still plans and --check has made by the time it plans.
    log_dir = "  ~ [base] dir:/var/log/barracuda: create: missing"
    dry_changes, dry_planned, dry_lines = plan_lines("\n".join(plan))
    changes, planned, lines = plan_lines(check.stderr)
    assert (dry_changes, dry_planned) == (changes + 1, planned)
    assert [normal(line, root) for line in dry_lines if line != log_dir] == [
        normal(line, twin) for line in lines]
    assert all(re.fullmatch(r"  [\w ]+ = .+: .+", note) for note in notes), notes
    assert any(line.startswith("      ") for line in rest)  # the diffs

    as_json = run("barracuda", "install", "--root", str(root), "--dry-run", "--json")
    assert as_json.returncode == 0
    assert as_json.stderr == dry.stderr
    assert json.loads(as_json.stdout)["pending"] == dry_changes


def test_a_missing_root_or_a_file_as_root_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = run("barracuda", "install", "--root", str(missing), "--yes")
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"error: --root {missing}: does not exist\n")
    (tmp_path / "file").write_text("")
    result = run("octopus", "site", "add", "o1", "a.example.org", "--platform", "web",
                 "--root", str(tmp_path / "file"), "--yes")
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"error: --root {tmp_path / 'file'}: not a directory\n")
    assert tree(tmp_path) == ["file"]


def test_apply_without_a_terminal_needs_yes(root: Path) -> None:
    result = run("barracuda", "install", "--root", str(root))
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", "error: not a terminal: pass --yes to apply changes (or --dry-run to see them)\n")


def test_no_at_the_question_exits_1_and_changes_nothing(root: Path) -> None:
    before = tree(root)
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k != "BARRACUDA_CONFIG"}
    with subprocess.Popen([sys.executable, "-m", "installer.cli.barracuda", "install",
                           "--root", str(root)], stdin=follower, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=environ) as proc:
        os.close(follower)
        os.write(leader, b"n\n")
        out, err = proc.communicate(timeout=60)
    os.close(leader)
    assert (proc.returncode, out) == (1, " ")  # click asks with input(" ") on stdout
    *plan, question = err.splitlines()
    plan_lines("\n".join(plan))
    assert question == "Apply these changes? [y/N]:"  # and no error line after the answer
    assert changed(root, before) == ["run/barracuda.lock", "var/log/barracuda/install-<STAMP>.log"]


def test_version_and_config_check() -> None:
    version = run("barracuda", "version")
    assert (version.returncode, version.stdout, version.stderr) == (0, f"{__version__}\n", "")
    good = CORPUS / "good" / "boa-operator.cnf"
    check = run("barracuda", "config", "check", str(good))
    assert (check.returncode, check.stdout, check.stderr) == (
        0, f"{good}: OK (44 keys set, 24 BOA keys ignored)\n", "")


def test_config_check_of_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.cnf"
    check = run("barracuda", "config", "check", str(missing))
    assert (check.returncode, check.stdout, check.stderr) == (
        3, "", f"error: {missing}: no such file\n")
    live = run("barracuda", "config", "check", "--root", str(tmp_path))
    assert (live.returncode, live.stdout, live.stderr) == (
        3, "", f"error: {tmp_path}/root/.barracuda.cnf: no such file\n")


OCTOPUS_PLANNED = [
    "  - [o1-redis] redis-user:o1: acl: user o1 (planned only under --root)",
    "  - [o1-accounts] group:o1: create: missing (planned only under --root)",
    "  - [o1-accounts] group:octopus-access: create: missing (planned only under --root)",
    "  - [o1-accounts] user:o1: create: missing (planned only under --root)",
    "  - [o1-accounts] user:o1.ftp: create: missing (planned only under --root)",
    "  - [o1-accounts] user:o1.web: create: missing (planned only under --root)",
    "  - [o1-accounts] member:www-data:o1: add: www-data is not in o1 (planned only under "
    "--root)",
    "  - [o1-accounts] group:o1.secrets: create: missing (planned only under --root)",
    "  - [o1-accounts] member:o1:o1.secrets: add: o1 is not in o1.secrets (planned only under "
    "--root)",
    "  - [o1-accounts] member:o1.web:o1.secrets: add: o1.web is not in o1.secrets (planned "
    "only under --root)",
    "  - [o1-databases] db-account:o1: create: account o1 (planned only under --root)",
]
SITE_PLANNED = [
    "  - [o1-databases] database:o1_a_example_org: create: missing (planned only under --root)",
    "  - [o1-databases] db-account:o1_a_example_org: create: account o1_a_example_org (planned "
    "only under --root)",
]


def test_octopus_install_site_add_and_lists(root: Path, tmp_path_factory: pytest.TempPathFactory
                                            ) -> None:
    listed = run("octopus", "list", "--root", str(root))
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "no instances\n", "")
    pending = run("octopus", "install", "o1", "--root", str(root), "--check")
    assert (pending.returncode, pending.stdout) == (5, "")
    changes, planned, lines = plan_lines(pending.stderr)
    assert changed(root, ["etc", "etc/os-release"]) == [
        "run/barracuda.lock", "var/log/barracuda/octopus-install-o1-<STAMP>.log"]
    assert [line for line in lines if line.startswith("  - ")] == OCTOPUS_PLANNED

    installed = run("octopus", "install", "o1", "--root", str(root), "--yes")
    assert (installed.returncode, installed.stdout) == (0, ""), installed.stderr
    *progress, only, log, summary = normal(installed.stderr, root).splitlines()
    assert all(PROGRESS.fullmatch(line) for line in progress), progress
    assert only == PLANNED_ONLY.format(n=planned)
    assert log == "Log: <ROOT>/var/log/barracuda/octopus-install-o1-<STAMP>.log"
    total = int(PROGRESS.fullmatch(progress[0])[2])  # type: ignore[index]
    assert summary == f"{changes} changed, {total - changes - planned} ok, 0 failed in <S> s"
    again = run("octopus", "install", "o1", "--root", str(root), "--check")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "\n".join([
        "Plan: 0 changes, 11 planned only (not executed under --root)", *OCTOPUS_PLANNED,
        ""]))

    code = tmp_path_factory.mktemp("web")
    (code / "index.php").write_text("<?php\n")
    platform = run("octopus", "platform", "add", "o1", "web", "--path", str(code),
                   "--root", str(root), "--yes")
    assert platform.returncode == 0, platform.stderr
    site = run("octopus", "site", "add", "o1", "a.example.org", "--platform", "web",
               "--root", str(root), "--yes")
    assert (site.returncode, site.stdout) == (0, ""), site.stderr
    assert normal(site.stderr, root).splitlines()[-3:] == [
        PLANNED_ONLY.format(n=13), "Log: <ROOT>/var/log/barracuda/octopus-site-add-o1-<STAMP>.log",
        "10 changed, 32 ok, 0 failed in <S> s"]

    sites = run("octopus", "site", "list", "o1", "--root", str(root))
    assert (sites.returncode, sites.stdout, sites.stderr) == (
        0, f"{'a.example.org':<32} {'web':<20} o1_a_example_org  - -\n", "")
    listed = run("octopus", "list", "--root", str(root))
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "o1\n", "")
    everything = run("octopus", "up-stable", "all", "--root", str(root), "--check")
    assert (everything.returncode, everything.stdout) == (0, "")
    assert normal(everything.stderr, root) == "\n".join([
        "== o1", "Plan: 0 changes, 13 planned only (not executed under --root)",
        *OCTOPUS_PLANNED[:-1], *SITE_PLANNED, OCTOPUS_PLANNED[-1],
        "1 instances in <S> s: all converged", ""])


def test_octopus_check_across_instances_exits_5_naming_them(root: Path) -> None:
    assert run("octopus", "install", "o1", "--root", str(root), "--yes").returncode == 0
    assert run("octopus", "install", "o2", "--root", str(root), "--yes").returncode == 0
    # o2 shares the machine's PHP budget with o1: converge both, then edit o2's pool.
    assert run("octopus", "up-stable", "all", "--root", str(root), "--yes").returncode == 0
    pool = next(root.glob("etc/php/*/fpm/pool.d/o2.conf"))
    pool.write_text(pool.read_text() + "; an edit\n")
    everything = run("octopus", "up-stable", "all", "--root", str(root), "--check")
    assert (everything.returncode, everything.stdout) == (5, ""), everything.stderr
    lines = normal(everything.stderr, root).splitlines()
    assert lines[0] == "== o1" and "== o2" in lines
    assert lines[-1] == "2 instances in <S> s: changes pending in o2"
    edited = [line for line in lines if f"file:/{pool.relative_to(root)}:" in line]
    assert len(edited) == 1 and edited[0].startswith("  ~ ["), lines
