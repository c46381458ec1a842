"""Plan ordering, apply with validation and rollback, signals, and the lock."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from installer.apply import Applier
from installer.checkpoint import Checkpoint
from installer.errors import ApplyError, DataError, LockError
from installer.facts import Facts
from installer.lock import is_held, locked
from installer.plan import Component, Validator, make_plan, order
from installer.resources.base import Change, Context, Resource
from installer.resources.files import File, Symlink
from installer.runner import SubprocessRunner
from installer.state import ManagedState
from installer.target import Target


def ctx_for(root: Path) -> Context:
    target = Target(root)
    runner = SubprocessRunner()
    return Context(target=target, runner=runner, facts=Facts(target, runner), services=None,
                   state=ManagedState.load(target), backup_dir=root / "moved",
                   log=logging.getLogger("test"))


@dataclass
class Boom(Resource):
    """A resource whose apply fails (or signals), to exercise rollback."""

    name: str
    signal_instead: bool = False

    @property
    def id(self) -> str:
        return f"boom:{self.name}"

    def check(self, ctx: Context) -> list[Change]:
        return [self.change("run", "always")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if self.signal_instead:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        raise OSError(5, "simulated failure")


def test_order_respects_requires_and_keeps_declared_order() -> None:
    a = File("/a", content="a")
    b = File("/b", content="b", requires=("file:/c",))
    c = File("/c", content="c")
    assert [r.id for r in order([a, b, c])] == ["file:/a", "file:/c", "file:/b"]


def test_order_rejects_cycles_unknown_and_duplicates() -> None:
    with pytest.raises(DataError, match="cycle"):
        order([File("/a", content="", requires=("file:/b",)),
               File("/b", content="", requires=("file:/a",))])
    with pytest.raises(DataError, match="not declared"):
        order([File("/a", content="", requires=("file:/zz",))])
    with pytest.raises(DataError, match="declared twice"):
        order([File("/a", content=""), File("/a", content="")])
    # a dependency satisfied by an earlier component is fine
    assert order([File("/a", content="", requires=("packages:x",))], frozenset({"packages:x"}))


def seed(root: Path) -> dict[str, bytes]:
    (root / "etc").mkdir()
    (root / "etc/one.conf").write_bytes(b"original one\n")
    os.chmod(root / "etc/one.conf", 0o640)
    (root / "etc/link").symlink_to("/original/target")
    return {"etc/one.conf": b"original one\n"}


@pytest.mark.parametrize("failure", ["validator", "resource", "signal"])
def test_failure_rolls_back_every_file_byte_for_byte(tmp_path: Path, failure: str) -> None:
    before = seed(tmp_path)
    handler_before = signal.getsignal(signal.SIGTERM)
    resources: list[Resource] = [
        File("/etc/one.conf", content="replaced\n", mode=0o600),
        File("/etc/new.conf", content="brand new\n"),
        Symlink("/etc/link", to="/new/target"),
    ]
    validators = []
    if failure == "validator":
        validators = [Validator(["sh", "-c", "echo 'bad config at line 3' >&2; exit 1"],
                                "test -t", live_only=False)]
    else:
        resources.append(Boom("x", signal_instead=failure == "signal"))
    ctx = ctx_for(tmp_path)
    checkpoint = Checkpoint(ctx.target, tmp_path / "cp")
    with pytest.raises(ApplyError) as caught:
        Applier(ctx, checkpoint).run([Component("demo", resources, validators)])
    message = str(caught.value)
    assert "Rolled back: restored /etc/link, /etc/new.conf, /etc/one.conf" in message
    expected_cause = {"validator": "test -t failed: bad config at line 3",
                      "resource": "simulated failure", "signal": "stopped by SIGTERM"}[failure]
    assert expected_cause in message
    assert (tmp_path / "etc/one.conf").read_bytes() == before["etc/one.conf"]
    assert (tmp_path / "etc/one.conf").stat().st_mode & 0o777 == 0o640
    assert not (tmp_path / "etc/new.conf").exists()
    assert os.readlink(tmp_path / "etc/link") == "/original/target"
    assert signal.getsignal(signal.SIGTERM) is handler_before


def test_success_then_second_plan_is_empty(tmp_path: Path) -> None:
    seed(tmp_path)
    component = Component("demo", [File("/etc/one.conf", content="x\n"),
                                   Symlink("/etc/link", to="/t")],
                          [Validator(["true"], "true", live_only=False)])
    ctx = ctx_for(tmp_path)
    outcome = Applier(ctx, Checkpoint(ctx.target, tmp_path / "cp")).run([component])
    ctx.state.save()
    assert outcome.summary().startswith("2 changed, 0 ok, 0 failed in ")
    assert make_plan([component], ctx_for(tmp_path)).pending == []


HOLD = """
import sys, time
from pathlib import Path
from installer.lock import locked
with locked(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(30)
"""


def test_lock_waits_then_names_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / "barracuda.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert is_held(lock)
        started = time.monotonic()
        with pytest.raises(LockError, match=f"PID {holder.pid}"), locked(lock, wait=0.6):
            pass
        assert time.monotonic() - started >= 0.5
    finally:
        holder.kill()
        holder.wait()
    assert not is_held(lock)
    with locked(lock, wait=0.1):
        assert lock.read_text().strip() == str(os.getpid())


@dataclass
class Made(Resource):
    """A change that is not a file (a database, an account): it registers its undo."""

    name: str
    undone: list[str]
    undo: bool = True

    @property
    def id(self) -> str:
        return f"made:{self.name}"

    def check(self, ctx: Context) -> list[Change]:
        return [self.change("create", "missing")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        ctx.journal.did(f"created {self.name}",
                        (lambda: self.undone.append(self.name)) if self.undo else None)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT, signal.SIGINT])
def test_a_stopped_run_undoes_its_journal_newest_first_then_its_files(
        tmp_path: Path, sig: signal.Signals) -> None:
    seed(tmp_path)
    undone: list[str] = []

    @dataclass
    class Stop(Boom):
        def apply(self, ctx: Context, changes: list[Change]) -> None:
            os.kill(os.getpid(), sig)
            time.sleep(1)

    ctx = ctx_for(tmp_path)
    components = [Component("first", [Made("database a", undone), Made("account b", undone)]),
                  Component("then", [File("/etc/new.conf", content="new\n"), Stop("x")])]
    with pytest.raises(ApplyError) as caught:
        Applier(ctx, Checkpoint(ctx.target, tmp_path / "cp")).run(components)
    message = str(caught.value)
    assert f"stopped by {sig.name}" in message
    assert ("Rolled back: undid created account b, created database a; restored "
            "/etc/new.conf from") in message
    assert undone == ["account b", "database a"]
    assert not (tmp_path / "etc/new.conf").exists()
    assert ctx.journal.entries == []


def test_what_cannot_be_undone_is_named_and_exits_4(tmp_path: Path) -> None:
    from installer.errors import RollbackError

    undone: list[str] = []
    ctx = ctx_for(tmp_path)
    components = [Component("c", [Made("database a", undone),
                                  Made("dropped database z", undone, undo=False),
                                  Boom("x")])]
    with pytest.raises(RollbackError) as caught:
        Applier(ctx, Checkpoint(ctx.target, tmp_path / "cp")).run(components)
    assert caught.value.exit_code == 4
    assert "Rolled back: undid created database a" in str(caught.value)
    assert "Could not undo: created dropped database z" in str(caught.value)
    assert undone == ["database a"]


def test_a_removed_tree_is_only_moved_aside_until_the_run_passed(tmp_path: Path) -> None:
    from installer.resources.trees import TreeAbsent

    (tmp_path / "srv/site/files").mkdir(parents=True)
    (tmp_path / "srv/site/files/kept.txt").write_text("data")
    ctx = ctx_for(tmp_path)
    with pytest.raises(ApplyError, match="undid removed /srv/site"):
        Applier(ctx, Checkpoint(ctx.target, tmp_path / "cp")).run(
            [Component("c", [TreeAbsent("/srv/site"), Boom("x")])])
    assert (tmp_path / "srv/site/files/kept.txt").read_text() == "data"
    Applier(ctx, Checkpoint(ctx.target, tmp_path / "cp2")).run(
        [Component("c", [TreeAbsent("/srv/site")])])
    assert list((tmp_path / "srv").iterdir()) == []  # gone, and nothing left aside
