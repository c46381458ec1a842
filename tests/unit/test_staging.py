"""Staged validation: the validator sees the run's files over the live tree, in a private
mount namespace; the live tree never changes, and nothing stays mounted."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from installer.facts import Facts
from installer.resources.base import Context
from installer.resources.files import Absent, File
from installer.runner import SubprocessRunner
from installer.staging import pending_paths, run_staged, top_of
from installer.state import ManagedState
from installer.target import Target


def test_top_of() -> None:
    assert top_of("/etc/nginx/conf.d/x.conf") == "/etc/nginx"
    assert top_of("/etc/nginx/nginx.conf") == "/etc/nginx"
    assert top_of("/root/.my.cnf") == "/root"
    assert top_of("/data/disk/o1/config/a.conf") == "/data/disk"


def live_ctx() -> Context:
    target = Target(Path("/"))
    runner = SubprocessRunner()
    return Context(target=target, runner=runner, facts=Facts(target, runner), services=None,
                   state=ManagedState(Path("/nonexistent/state.json")),
                   backup_dir=Path("/nonexistent"), log=logging.getLogger("test"))


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")


@needs_root
def test_validator_sees_the_staged_tree_and_the_live_tree_stays(tmp_path: Path) -> None:
    live = tmp_path / "site.conf"
    live.write_text("old\n")
    gone = tmp_path / "gone.conf"
    gone.write_text("still here\n")
    ctx = live_ctx()
    resources = [File(str(live), content="new\n", comment=""),
                 File(str(tmp_path / "added.conf"), content="added\n", comment=""),
                 Absent(str(gone))]
    assert len(pending_paths(ctx, resources)) == 3
    script = (f"cat {live} {tmp_path}/added.conf; test -e {gone} && echo GONE-VISIBLE; "
              "grep -c overlay /proc/self/mounts")
    staged = run_staged(ctx, resources, ["sh", "-c", script]).result
    if staged is None:
        pytest.skip("overlayfs is not available on this machine")
    assert staged.ok, staged.output
    lines = staged.stdout.splitlines()
    assert lines[:2] == ["new", "added"] and "GONE-VISIBLE" not in lines
    assert int(lines[-1]) >= 1
    assert live.read_text() == "old\n" and gone.exists()
    assert not (tmp_path / "added.conf").exists()
    with open("/proc/self/mounts") as mounts:
        assert str(tmp_path) not in mounts.read()


@needs_root
def test_a_failing_validator_is_reported_not_hidden(tmp_path: Path) -> None:
    ctx = live_ctx()
    staged = run_staged(ctx, [File(str(tmp_path / "x.conf"), content="x\n")],
                        ["sh", "-c", "echo '[emerg] bad' >&2; exit 1"]).result
    if staged is None:
        pytest.skip("overlayfs is not available on this machine")
    assert staged.rc == 1 and "[emerg] bad" in staged.output


def test_staged_check_runs_before_any_change_and_not_past_an_account_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from installer import apply
    from installer.apply import Applier
    from installer.checkpoint import Checkpoint
    from installer.errors import ApplyError
    from installer.plan import Component, Validator
    from installer.resources.accounts import User
    from installer.runner import Result
    from tests.fakes import FakeRunner, FakeServices, make_ctx

    calls: list[list[str]] = []

    def fake_staged(ctx: Context, resources: list[object], argv: list[str],
                    timeout: float = 120) -> object:
        calls.append(argv)
        failing = argv[0] == "false"
        return type("S", (), {"result": Result(tuple(argv), 1 if failing else 0,
                                               "", "[emerg] staged" if failing else "")})()

    monkeypatch.setattr(apply, "run_staged", fake_staged)
    ctx = make_ctx(tmp_path, FakeRunner(), FakeServices())
    web = Component("web", [File("/etc/web/a.conf", content="a")],
                    validators=[Validator(["false"], "web check")])
    with pytest.raises(ApplyError, match="web check failed on the staged change, before "
                       "anything was changed: \\[emerg\\] staged"):
        Applier(ctx, Checkpoint(ctx.target, tmp_path / "cp")).run([web])
    assert calls == [["false"]] and not (tmp_path / "etc/web/a.conf").exists()

    calls.clear()
    accounts = Component("accounts", [User("barracuda-test-nobody", home="/x", primary="x")])
    pool = Component("pool", [File("/etc/pool/p.conf", content="p")],
                     validators=[Validator(["true"], "pool check")])
    Applier(ctx, Checkpoint(ctx.target, tmp_path / "cp2")).run([accounts, pool])
    assert calls == []  # the pool names a user that does not exist yet: checked after writing


@needs_root
def test_a_namespace_that_cannot_be_made_is_unavailable_not_a_failure(tmp_path: Path) -> None:
    from dataclasses import replace as with_

    from installer.runner import Result

    class ChrootRunner:
        """unshare fails as it does in a chroot, before the validator could run."""

        def run(self, argv: list[str], **_: object) -> Result:
            return Result(tuple(argv), 1, "", "unshare: cannot change root filesystem "
                          "propagation: Invalid argument\n")

    ctx = with_(live_ctx(), runner=ChrootRunner())  # type: ignore[arg-type]
    staged = run_staged(ctx, [File(str(tmp_path / "x.conf"), content="x\n")], ["nginx", "-t"])
    assert staged.result is None
