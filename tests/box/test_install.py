"""`./install.sh --yes` on fresh Debian boxes (Debian 12 and 13 with systemd, Debian 12
without it), then the shared stack checks (tests/infra) and what only a box may do: run the
installer again, edit a managed file, look at the plan."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.box.boxes import Box
from tests.infra.stack import expected
from tests.infra.test_stack import *  # noqa: F403 - the shared checks run against each box

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(variant_box: Box) -> Iterator[tuple[Box, subprocess.CompletedProcess[str]]]:
    result = variant_box.install_project(REPO)
    yield variant_box, result


@pytest.fixture(scope="module")
def box(installed: tuple[Box, subprocess.CompletedProcess[str]]) -> Box:
    return installed[0]


@pytest.fixture(scope="module")
def host(box: Box) -> Any:
    return box.host


def summary(output: str) -> str:
    lines = [line for line in output.splitlines() if re.match(r"\d+ changed, ", line)]
    assert lines, output[-2000:]
    return lines[-1]


def main_pids(box: Box) -> dict[str, str]:
    exp = expected(box.host)
    return {
        "nginx": box.read_file("/run/nginx.pid").strip(),
        "php-fpm": box.read_file(f"/run/php/php{exp.php}-fpm.pid").strip(),
        "mariadbd": box.run("pidof mariadbd").stdout.strip(),
        "redis": box.run("pidof redis-server").stdout.strip(),
    }


def test_first_install_converges(installed: tuple[Box, subprocess.CompletedProcess[str]]) -> None:
    _, result = installed
    line = summary(result.stderr)
    assert ", 0 failed in " in line
    assert not line.startswith("0 changed")


def test_second_install_changes_nothing_and_restarts_nothing(box: Box) -> None:
    before = main_pids(box)
    assert all(before.values()), before
    result = box.run(["barracuda", "install", "--yes"])
    assert summary(result.stderr).startswith("0 changed, "), result.stderr[-2000:]
    assert main_pids(box) == before


def test_install_sh_again_is_quick_and_changes_nothing(box: Box) -> None:
    result = box.run("cd /root/barracuda && ./install.sh --yes")
    assert "installing barracuda from" not in result.stderr
    assert summary(result.stderr).startswith("0 changed, ")


def test_dry_run_on_converged_box_plans_nothing(box: Box) -> None:
    result = box.run(["barracuda", "install", "--dry-run"])
    assert "Plan: nothing to change." in result.stderr


def test_operator_edit_is_reported_and_kept(box: Box) -> None:
    path = "/etc/nginx/conf.d/barracuda.conf"
    original = box.read_file(path)
    box.write_file(path, original + "# an operator's tweak\n")
    result = box.run(["barracuda", "install", "--yes"])
    assert f"{path} was edited locally; your version is kept as {path}.barracuda-local-" in (
        result.stderr)
    kept = box.run(f"cat {path}.barracuda-local-*").stdout
    assert kept.endswith("# an operator's tweak\n")
    assert box.read_file(path) == original
    again = box.run(["barracuda", "install", "--yes"])
    assert summary(again.stderr).startswith("0 changed, ")


def test_keep_local_edits_leaves_the_file(box: Box) -> None:
    path = "/etc/nginx/conf.d/barracuda.conf"
    original = box.read_file(path)
    box.write_file(path, original + "# kept\n")
    result = box.run(["barracuda", "install", "--yes", "--keep-local-edits"])
    assert "left alone (--keep-local-edits)" in result.stderr
    assert box.read_file(path).endswith("# kept\n")
    box.write_file(path, original)


def tree_digest(box: Box) -> str:
    return box.run("find /etc/nginx /var/aegir /etc/php /etc/mysql /etc/redis -type f "
                   "-exec sha256sum {} + | sort").stdout


def test_broken_live_nginx_tree_stops_the_run_before_any_change(box: Box) -> None:
    broken = "/var/aegir/config/server_master/nginx/post.d/zz-operator.conf"
    box.write_file(broken, "this_is_not_a_directive on;\n")
    managed = "/etc/nginx/conf.d/barracuda.conf"
    original = box.read_file(managed)
    box.write_file(managed, original + "# edited while the tree is broken\n")
    before, pids = tree_digest(box), main_pids(box)
    try:
        result = box.run(["barracuda", "install", "--yes"], check=False)
        assert result.returncode == 1
        error = result.stderr.strip().splitlines()[-1]
        assert error.startswith("error: the live Nginx configuration fails nginx -t"), error
        assert f"{broken}:1" in error
        assert tree_digest(box) == before and main_pids(box) == pids
    finally:
        box.run(["rm", "-f", broken])
        box.write_file(managed, original)
    assert summary(box.run(["barracuda", "install", "--yes"]).stderr).startswith("0 changed, ")
