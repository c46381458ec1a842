"""Runs the data-driven resource cases in tests/cases/*.yml.

Each case builds a --root tree, plans, checks the expected changes, applies, checks the
resulting tree, then plans again on the "after" state: nothing may be left to do."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from installer.apply import Applier
from installer.checkpoint import Checkpoint
from installer.facts import Facts
from installer.plan import Component, make_plan
from installer.resources.base import Context, Resource
from installer.resources.files import Absent, Directory, File, Symlink
from installer.resources.system import Packages, Service
from installer.runner import SubprocessRunner
from installer.state import ManagedState
from installer.target import Target

CASES = [case for path in sorted(Path(__file__).parent.glob("*.yml"))
         for case in yaml.safe_load(path.read_text())]


def build_resource(spec: dict[str, Any]) -> Resource:
    spec = dict(spec)
    kind = spec.pop("type")
    if "mode" in spec:
        spec["mode"] = int(spec["mode"], 8)
    return {"file": File, "dir": Directory, "link": Symlink, "absent": Absent,
            "packages": Packages, "service": Service}[kind](**spec)


def make_tree(root: Path, given: dict[str, dict[str, Any]]) -> None:
    for path, spec in given.items():
        real = root / path.lstrip("/")
        real.parent.mkdir(parents=True, exist_ok=True)
        if spec.get("dir"):
            real.mkdir(exist_ok=True)
        elif "link" in spec:
            os.symlink(spec["link"], real)
        else:
            real.write_text(spec["content"])
        if "mode" in spec:
            os.chmod(real, int(spec["mode"], 8))


def write_dpkg_status(root: Path, names: list[str]) -> None:
    status = root / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text("".join(
        f"Package: {n}\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\n\n"
        for n in names))


def context(root: Path, case: dict[str, Any]) -> Context:
    target = Target(root)
    runner = SubprocessRunner()
    state = ManagedState.load(target)
    return Context(target=target, runner=runner, facts=Facts(target, runner), services=None,
                   state=state, backup_dir=root / "var/backups/barracuda/moved/test",
                   keep_local_edits=bool(case.get("keep_local_edits")),
                   log=logging.getLogger("test"))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    make_tree(root, case.get("given") or {})
    if "dpkg_installed" in case:
        write_dpkg_status(root, case["dpkg_installed"])
    ctx = context(root, case)
    for path, content in (case.get("managed") or {}).items():
        ctx.state.record(path, hashlib.sha256(content.encode()).hexdigest())
    ctx.state.save()
    resources = [build_resource(spec) for spec in case["resources"]]
    components = [Component("case", resources)]

    plan = make_plan(components, context(root, case))
    got = {s.resource.id: [c.action for c in s.changes] for s in plan.steps if s.changes}
    assert got == (case.get("expect") or {})
    planned_only = sorted({c.resource for c in plan.planned_only})
    assert planned_only == sorted(case.get("planned_only", []))

    ctx = context(root, case)
    checkpoint = Checkpoint(ctx.target, root / "var/backups/barracuda/checkpoints/test")
    outcome = Applier(ctx, checkpoint).run(components)
    ctx.state.save()
    assert outcome.count("failed") == 0

    for path, content in (case.get("after") or {}).items():
        assert (root / path.lstrip("/")).read_text() == content, path
    for path, content in (case.get("kept_beside") or {}).items():
        real = root / path.lstrip("/")
        copies = list(real.parent.glob(real.name + ".barracuda-local-*"))
        assert [c.read_text() for c in copies] == [content]
    for path in case.get("moved_aside") or []:
        assert (ctx.backup_dir / path.lstrip("/")).exists(), path

    second = make_plan(components, context(root, case))
    assert second.pending == [], [c.as_dict() for c in second.pending]
