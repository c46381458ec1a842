"""Builder cases for the octopus workflows (tests/cases/octopus/*.yml): records and facts
in, change ids out, then applied and converged.

Each case sets up a --root tree from its data: the machine (its distribution, the PHP
versions its packages offer and /root/.barracuda.cnf), the users and groups that exist,
files (records, configs), source codebases to add as platforms, and `setup` steps (octopus
commands run and applied first, through the real builders). Then `run` is the command
under test, given as on the command line:

- with `error`, its builder must refuse with exactly that one-line message (what the CLI
  prints after "error: ") and the tree must be byte for byte what it was;
- otherwise its plan must hold exactly `expect` (executed changes: resource id -> actions)
  and `planned_only` (ids not executed under --root: accounts, databases, services,
  commands), with the ids of `order` in that order; then it is applied through the engine
  (converge.run_converge, the path of every octopus command) with no failure, the files of
  `after` must exist and those of `gone` must not, and a `--check` run of `second` (by
  default `up-stable` of the instance) must find no executed change left.

The steps go to the builders (installer/octopus/instances.py, platforms.py, sites/*), not
through the CLI: that is tested in tests/cli/."""

from __future__ import annotations

import argparse
import copy
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from installer.apply import Outcome
from installer.apply import Result as StepResult
from installer.config import Config
from installer.converge import RunOptions, run_converge
from installer.errors import BarracudaError, ChangesPending
from installer.facts import Facts
from installer.octopus import instances, platforms
from installer.octopus.sites import add, remove, state, verify
from installer.octopus.sites import set as settings_of
from installer.octopus.sites.common import SiteSettings
from installer.octopus.sites.install import InstallOptions
from installer.plan import Builder, Component, Plan
from installer.runlog import Redactor
from installer.stack.release import Release

HERE = Path(__file__).parent / "octopus"
CASES = [(path.stem, case) for path in sorted(HERE.glob("*.yml"))
         for case in yaml.safe_load(path.read_text())]

OS_RELEASE = 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'


class Console:
    """The engine's console, recording instead of printing."""

    interactive = False

    def __init__(self) -> None:
        self.plans: list[Plan] = []
        self.lines: list[str] = []

    def say(self, message: str) -> None:
        self.lines.append(message)

    def warn(self, message: str) -> None:
        self.lines.append(f"warning: {message}")

    def show_plan(self, plan: Plan) -> None:
        self.plans.append(plan)

    def progress(self, index: int, total: int, result: StepResult) -> None:
        pass

    def emit_json(self, payload: dict[str, Any]) -> None:
        pass

    def confirm(self, question: str) -> bool:
        return False


# The octopus commands a step may name, with the options the builders take.
def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="octopus", exit_on_error=False)
    commands = top.add_subparsers(dest="command", required=True)
    p = commands.add_parser("install")
    p.add_argument("name")
    p.add_argument("--email", default="")
    p.add_argument("--php", default="")
    for command in ("up-stable", "remove"):
        p = commands.add_parser(command)
        p.add_argument("name")
        p.add_argument("--force", action="store_true")
    platform = commands.add_parser("platform").add_subparsers(dest="sub", required=True)
    p = platform.add_parser("add")
    p.add_argument("name")
    p.add_argument("platform")
    p.add_argument("--path", default="")
    p.add_argument("--git", default="")
    p.add_argument("--ref", default="")
    for sub in ("verify", "remove"):
        p = platform.add_parser(sub)
        p.add_argument("name")
        p.add_argument("platform")
    site = commands.add_parser("site").add_subparsers(dest="sub", required=True)
    for sub in ("add", "set"):
        p = site.add_parser(sub)
        p.add_argument("name")
        p.add_argument("domain")
        p.add_argument("--type", dest="kind")
        p.add_argument("--hsts", action=argparse.BooleanOptionalAction, default=None)
        p.add_argument("--cache-ttl", type=int)
        if sub == "add":
            p.add_argument("--platform", required=True)
            p.add_argument("--alias", action="append", default=[])
            p.add_argument("--php", default="")
            p.add_argument("--install", action="store_true")
            p.add_argument("--profile", default="standard")
    for sub in ("disable", "enable"):
        p = site.add_parser(sub)
        p.add_argument("name")
        p.add_argument("domain")
    for sub in ("remove", "verify"):
        p = site.add_parser(sub)
        p.add_argument("name")
        p.add_argument("domain", nargs="?", default="")
        p.add_argument("--all", action="store_true")
    return top


PARSER = _parser()


def builder(step: str, src: Path) -> tuple[str, Builder]:
    """The instance a step works on and the builder its command runs."""
    a = PARSER.parse_args(shlex.split(step.replace("{src}", str(src))))
    command = " ".join(filter(None, [a.command, getattr(a, "sub", None)]))
    build: Builder
    if command == "install":
        build = instances.install(a.name, a.email, a.php)
    elif command == "up-stable":
        build = instances.upgrade(a.name)
    elif command == "remove":
        build = instances.remove(a.name, a.force)
    elif command == "platform add":
        build = platforms.platform_add(a.name, a.platform, a.path, a.git, a.ref)
    elif command == "platform verify":
        build = platforms.platform_verify(a.name, a.platform)
    elif command == "platform remove":
        build = platforms.platform_remove(a.name, a.platform)
    elif command in ("site add", "site set"):
        settings = SiteSettings(a.kind, a.hsts, a.cache_ttl)
        if command == "site set":
            build = settings_of.site_set(a.name, a.domain, settings)
        else:
            options = InstallOptions(a.profile) if a.install else None
            build = add.site_add(a.name, a.domain, a.platform, a.alias, a.php, settings,
                                 options)
    elif command in ("site disable", "site enable"):
        build = state.site_state(a.name, a.domain, command == "site disable")
    elif command == "site remove":
        build = remove.site_remove(a.name, a.domain)
    elif command == "site verify":
        build = verify.site_verify(a.name, a.domain, a.all)
    else:  # pragma: no cover - the parser knows no other
        raise AssertionError(command)
    return a.name, build


# --- the data: machine, accounts, files, codebases -------------------------------------

def write_machine(root: Path, machine: dict[str, Any]) -> None:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text(OS_RELEASE)
    cnf = root / "root/.barracuda.cnf"
    cnf.parent.mkdir(parents=True, exist_ok=True)
    cnf.write_text("".join(f'{key}="{value}"\n'
                           for key, value in (machine.get("config") or {}).items()))
    cnf.chmod(0o600)
    users = machine.get("users") or []
    groups = machine.get("groups") or []
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        + "".join(f"{u}:x:{2000 + i}:{2000 + i}::/home/{u}:/bin/sh\n"
                  for i, u in enumerate(users)))
    (root / "etc/group").write_text(
        "root:x:0:\nwww-data:x:33:\n"
        + "".join(f"{g}:x:{3000 + i}:\n" for i, g in enumerate(groups)))


def add_accounts(root: Path, accounts: dict[str, list[str]]) -> None:
    """Accounts that exist now: `users`, `groups` and `members` ("user:group")."""
    passwd, group = root / "etc/passwd", root / "etc/group"
    with passwd.open("a") as out:
        for user in accounts.get("users") or []:
            uid = 2000 + len(passwd.read_text().splitlines())
            out.write(f"{user}:x:{uid}:{uid}::/home/{user}:/bin/sh\n")
            out.flush()
    with group.open("a") as out:
        for name in accounts.get("groups") or []:
            out.write(f"{name}:x:{3000 + len(group.read_text().splitlines())}:\n")
            out.flush()
    lines = group.read_text().splitlines()
    for member in accounts.get("members") or []:
        user, name = member.split(":")
        for n, line in enumerate(lines):
            if line.split(":")[0] == name:
                lines[n] = line + ("," if not line.endswith(":") else "") + user
    group.write_text("".join(f"{line}\n" for line in lines))


def write_files(top: Path, files: dict[str, Any]) -> None:
    for path, content in files.items():
        real = top / path.lstrip("/")
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_text(content)


def edit_records(root: Path, edits: dict[str, dict[str, Any]]) -> None:
    """Change keys of YAML records in place (an operator's or a migration's edit)."""
    for path, changes in edits.items():
        real = root / path.lstrip("/")
        text = real.read_text()
        header = "".join(line for line in text.splitlines(keepends=True)
                         if line.startswith("#"))
        data = yaml.safe_load(text)
        data.update(changes)
        real.write_text(header + yaml.safe_dump(data, sort_keys=True))  # as the model writes


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under the root with its content (or its link target, or "dir")."""
    out: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = f"-> {path.readlink()}"
        elif path.is_dir():
            out[key] = f"dir {path.stat().st_mode:o}"
        else:
            out[key] = path.read_bytes()
    return out


@pytest.fixture
def offered(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Set the PHP versions the distribution's packages offer (as with an extra repository),
    for cases that need two."""
    real = Release.load

    def with_versions(versions: list[str]) -> None:
        def load(cls: type[Release], codename: str) -> Release:
            release = real(codename)
            data = copy.deepcopy(release.data)
            data["php"]["versions"] = versions
            return cls(codename, data)

        monkeypatch.setattr(Release, "load", classmethod(load))

    yield with_versions


# --- running a step through the engine --------------------------------------------------

def plan_of(root: Path, build: Builder) -> Plan:
    console = Console()
    run_converge(RunOptions(root=root, dry_run=True), console, "case-plan", build)
    assert len(console.plans) == 1
    return console.plans[0]


def apply(root: Path, build: Builder) -> Outcome:
    """Apply through the engine (accounts, databases and services stay planned only)."""
    console = Console()
    outcome = run_converge(RunOptions(root=root, yes=True), console, "case-apply", build)
    assert outcome is not None
    failed = [r.as_dict() for r in outcome.results if r.status == "failed"]
    assert not failed, failed
    return outcome


def case_id(resource_id: str, root: Path) -> str:
    """A resource id as a case names it: without the root's path (the instance's config
    file is named by its real path) and with <stamp> for an archive's time stamp."""
    return re.sub(r"\d{8}-\d{6}", "<stamp>", resource_id.replace(str(root), ""))


def changes(plan: Plan, root: Path) -> tuple[dict[str, list[str]], list[str]]:
    """(executed changes: id -> actions, planned-only ids)."""
    executed: dict[str, list[str]] = {}
    for change in plan.pending:
        executed.setdefault(case_id(change.resource, root), []).append(change.action)
    return executed, sorted({case_id(c.resource, root) for c in plan.planned_only})


def ids_in_order(plan: Plan, root: Path) -> list[str]:
    return [case_id(step.resource.id, root) for step in plan.steps if step.changes]


def as_yaml(executed: dict[str, list[str]], planned_only: list[str]) -> str:
    """What the plan holds, as the case would say it (shown when a case fails)."""
    flow = {k: yaml.safe_dump(v, default_flow_style=True).strip() for k, v in executed.items()}
    return ("\n  expect:\n" + "".join(f"    {k}: {v}\n" for k, v in flow.items())
            + "  planned_only:\n" + "".join(f"    - {i}\n" for i in planned_only))


@pytest.mark.parametrize("case", [c for _, c in CASES],
                         ids=[f"{stem}: {c['name']}" for stem, c in CASES])
def test_octopus_case(case: dict[str, Any], tmp_path: Path, offered: Any) -> None:
    root, src = tmp_path / "root", tmp_path / "src"
    root.mkdir()
    src.mkdir()
    machine = case.get("machine") or {}
    if "php_offered" in machine:
        offered(machine["php_offered"])
    write_machine(root, machine)
    for name, files in (case.get("sources") or {}).items():
        write_files(src / name, files)
    for step in case.get("setup") or []:
        if isinstance(step, dict):  # what happened between commands
            edit_records(root, step.get("edit") or {})
            add_accounts(root, step.get("accounts") or {})
            continue
        apply(root, builder(step, src)[1])
    write_files(root, case.get("given") or {})
    edit_records(root, case.get("edit") or {})

    name, build = builder(case["run"], src)
    if "error" in case:
        before = snapshot(root)
        with pytest.raises(BarracudaError) as caught:
            run_converge(RunOptions(root=root, yes=True), Console(), "case-error", build)
        assert str(caught.value).replace(str(src), "{src}") == case["error"]
        assert "\n" not in str(caught.value)
        assert snapshot(root) == before, "a refused command wrote something"
        return

    plan = plan_of(root, build)
    executed, planned_only = changes(plan, root)
    got = as_yaml(executed, planned_only)
    assert executed == (case.get("expect") or {}), got
    assert planned_only == sorted(case.get("planned_only") or []), got
    if "order" in case:
        seen = ids_in_order(plan, root)
        got_order = [i for i in seen if i in case["order"]]
        assert got_order == case["order"], "\n".join(got_order)

    built: list[Component] = []

    def keep(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        built.extend(build(config, facts, redactor))
        return built

    outcome = apply(root, keep)
    assert outcome.count("changed") == len(executed)
    for path in case.get("after") or []:
        assert (root / path.lstrip("/")).exists(), path
    for path in case.get("gone") or []:
        assert not (root / path.lstrip("/")).exists(), path

    second = case.get("second", f"up-stable {name}")
    again: Builder = (lambda *_: built) if second == "same" else builder(second, src)[1]
    console = Console()
    try:
        run_converge(RunOptions(root=root, check=True), console, "case-second", again)
    except ChangesPending:
        left = [c.as_dict() for p in console.plans for c in p.pending]
        pytest.fail(f"{second} after {case['run']}: still to do {left}")
    if "second_planned_only" in case:
        assert changes(console.plans[-1], root)[1] == sorted(case["second_planned_only"])


def test_every_workflow_has_a_case_and_an_error_case() -> None:
    """The case files cover each workflow the brief names, each with a refusal."""
    for command in ("install", "remove", "platform add", "site add", "site set",
                    "site remove"):
        mine = [c for _, c in CASES if c["run"].startswith(command + " ")]
        assert any("error" not in c for c in mine), command
        assert any("error" in c for c in mine), command
