"""The boa.hosting collection's modules (ansible/ansible_collections/boa/hosting): how their
options become the tool's arguments, how the tool's --json answers become `changed`, the
changes and Ansible's diff, and which line of a failure becomes the task's message. The
mapping is plain Python (the modules import Ansible only in main()), so no Ansible is needed
here; tests/box/test_fleet.py runs the modules for real with ansible-core."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

COLLECTIONS = Path(__file__).resolve().parents[2] / "ansible"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


def load(name: str) -> ModuleType:
    return importlib.import_module(f"ansible_collections.boa.hosting.plugins.{name}")


tool = load("module_utils.tool")
instance = load("modules.instance")
platform = load("modules.platform")
site = load("modules.site")
client = load("modules.client")
barracuda = load("modules.barracuda")


def params(spec: dict[str, Any], **given: Any) -> dict[str, Any]:
    """What AnsibleModule hands main(): every option, its default when not given."""
    out = {key: option.get("default") for key, option in spec.items()}
    unknown = set(given) - set(spec)
    assert not unknown, unknown
    out.update(given)
    return out


# --------------------------------------------------------------------------- converges


def test_check_mode_is_the_tools_dry_run() -> None:
    argv = ["octopus", "install", "o1"]
    assert tool.converge_argv(argv, False) == ["octopus", "install", "o1", "--yes", "--json"]
    assert tool.converge_argv(argv, True) == ["octopus", "install", "o1", "--dry-run",
                                              "--json"]


APPLIED: dict[str, Any] = {"results": [
    {"component": "o1-tree", "resource": "dir:/data/disk/o1", "status": "ok", "reason": "",
     "changes": []},
    {"component": "o1-nginx", "resource": "file:/x.conf", "status": "changed", "reason": "",
     "changes": [{"resource": "file:/x.conf", "action": "update", "reason": "content",
                  "diff": "--- a\n+++ b\n-old\n+new\n", "executed": True}]},
], "summary": "1 changed, 1 ok, 0 failed in 0.4 s", "log": "/var/log/barracuda/x.log"}
PLANNED: dict[str, Any] = {"plan": [
    {"component": "o1-sites", "resource": "db:o1_x", "changes": [
        {"resource": "db:o1_x", "action": "create", "reason": "missing", "diff": "",
         "executed": True}]}], "pending": 1}


def test_changed_exactly_when_the_tool_changed_something() -> None:
    assert tool.changed_of(APPLIED) is True
    quiet = {"results": [dict(r, status="ok", changes=[]) for r in APPLIED["results"]],
             "summary": "0 changed, 2 ok, 0 failed in 0.1 s"}
    assert tool.changed_of(quiet) is False
    assert tool.changed_of(PLANNED) is True
    assert tool.changed_of({"plan": [], "pending": 0}) is False


def test_diff_mode_shows_the_tools_diffs() -> None:
    changes = tool.changes_of(APPLIED)
    assert [c["resource"] for c in changes] == ["file:/x.conf"]
    assert changes[0]["component"] == "o1-nginx"
    assert tool.diff_of(changes) == [{"before_header": "file:/x.conf",
                                      "after_header": "file:/x.conf",
                                      "prepared": "file:/x.conf: update: content\n"
                                                  "--- a\n+++ b\n-old\n+new\n"}]
    # A change without a file diff is shown by its resource, action and reason.
    assert tool.diff_of(tool.changes_of(PLANNED))[0]["prepared"] == "db:o1_x: create: missing\n"


def test_the_last_json_document_of_stdout_is_read() -> None:
    text = "noise\n" + json.dumps({"plan": [], "pending": 0}) + "\n" + json.dumps(APPLIED)
    assert tool.last_json(text) == APPLIED
    assert tool.last_json("") == {}
    assert tool.last_json("not json {") == {}


def test_a_failure_is_the_tools_one_line_error() -> None:
    stderr = ("warning: something\nPlan: 3 changes\n"
              "error: /root/.o1.octopus.cnf:3: _PHP_FPM_VERSION: bad value \"9.9\"\n")
    assert tool.error_line(stderr) == '/root/.o1.octopus.cnf:3: _PHP_FPM_VERSION: bad value "9.9"'
    assert tool.error_line("Traceback\nboom\n") == "boom"
    assert tool.error_line("", "only stdout\n") == "only stdout"
    assert tool.error_line("") == "the command failed without a message"


class FakeModule:
    """Only what tool.run/converge call: run_command, fail_json, check_mode."""

    def __init__(self, rc: int, out: str, err: str, check: bool = False) -> None:
        self.answer = (rc, out, err)
        self.check_mode = check
        self.ran: list[list[str]] = []
        self.failed: dict[str, Any] | None = None

    def run_command(self, argv: list[str], environ_update: dict[str, str]) -> tuple[
            int, str, str]:
        self.ran.append(argv)
        return self.answer

    def fail_json(self, **kwargs: Any) -> None:
        self.failed = kwargs
        raise SystemExit(1)


def test_converge_runs_and_collects_and_a_failure_fails_the_task() -> None:
    module = FakeModule(0, json.dumps(PLANNED), "Plan: 1 changes\n", check=True)
    outcome = tool.Outcome()
    tool.converge(module, outcome, ["octopus", "site", "verify", "o1", "a.org"])
    assert module.ran == [["octopus", "site", "verify", "o1", "a.org", "--dry-run", "--json"]]
    result = outcome.result(True)
    assert result["changed"] is True and len(result["diff"]) == 1
    assert "diff" not in outcome.result(False)
    bad = FakeModule(3, "", "error: instance o9 does not exist (instances: o1)\n")
    with pytest.raises(SystemExit):
        tool.converge(bad, tool.Outcome(), ["octopus", "install", "o9"])
    assert bad.failed is not None
    assert bad.failed["msg"] == "instance o9 does not exist (instances: o1)"
    assert bad.failed["rc"] == 3


# --------------------------------------------------------------------------- modules


def test_instance() -> None:
    spec = instance.SPEC
    assert instance.commands("octopus", params(spec, name="o1", email="a@b.org"), False) == [
        ["octopus", "install", "o1", "--email", "a@b.org"]]
    # Present and there: the same converge (the tool changes nothing when nothing differs).
    assert instance.commands("octopus", params(spec, name="o1", php="8.2"), True) == [
        ["octopus", "install", "o1", "--php", "8.2"]]
    assert instance.commands("octopus", params(spec, name="o1", state="absent"), False) == []
    assert instance.commands("octopus", params(spec, name="o1", state="absent", force=True),
                             True) == [["octopus", "remove", "o1", "--force"]]


def test_platform() -> None:
    spec = platform.SPEC
    given = params(spec, instance="o1", name="d7", path="/srv/d7")
    assert platform.commands("octopus", given, False) == [
        ["octopus", "platform", "add", "o1", "d7", "--path", "/srv/d7"]]
    assert platform.commands("octopus", given, True) == [
        ["octopus", "platform", "verify", "o1", "d7"]]
    git = params(spec, instance="o1", name="d11", git="https://git.example/d11.git",
                 ref="v1")
    assert platform.commands("octopus", git, False) == [
        ["octopus", "platform", "add", "o1", "d11", "--git", "https://git.example/d11.git",
         "--ref", "v1"]]
    gone = params(spec, instance="o1", name="d7", state="absent")
    assert platform.commands("octopus", gone, True) == [
        ["octopus", "platform", "remove", "o1", "d7"]]
    assert platform.commands("octopus", gone, False) == []


def test_site_add_set_verify_remove() -> None:
    spec = site.SPEC
    new = params(spec, instance="o1", domain="a.org", platform="d7", aliases=["www.a.org"],
                 install=True, site_name="A", hsts=False, cache_ttl=0)
    assert site.commands("octopus", new, False) == [[
        "octopus", "site", "add", "o1", "a.org", "--platform", "d7", "--alias", "www.a.org",
        "--no-hsts", "--cache-ttl", "0", "--install", "--site-name", "A"]]
    assert site.commands("octopus", new, True) == [[
        "octopus", "site", "set", "o1", "a.org", "--no-hsts", "--cache-ttl", "0"]]
    plain = params(spec, instance="o1", domain="a.org", platform="d7")
    assert site.commands("octopus", plain, True) == [["octopus", "site", "verify", "o1",
                                                      "a.org"]]
    gone = params(spec, instance="o1", domain="a.org", state="absent")
    assert site.commands("octopus", gone, True) == [["octopus", "site", "remove", "o1",
                                                     "a.org"]]
    assert site.commands("octopus", gone, False) == []


def test_site_export_and_import() -> None:
    spec = site.SPEC
    out = params(spec, instance="o1", domain="a.org", state="exported",
                 archive="/root/a.tar.zst")
    assert site.commands("octopus", out, True) == [
        ["octopus", "site", "export", "o1", "a.org", "--to", "/root/a.tar.zst"]]
    into = params(spec, instance="o2", domain="b.org", archive="/root/a.tar.zst",
                  platform="d7")
    assert site.commands("octopus", into, False) == [
        ["octopus", "site", "import", "o2", "/root/a.tar.zst", "--domain", "b.org",
         "--platform", "d7"]]
    # Once there, the archive is not read again: the site is verified like any other.
    assert site.commands("octopus", into, True) == [["octopus", "site", "verify", "o2",
                                                     "b.org"]]


def test_client() -> None:
    spec = client.SPEC
    given = params(spec, instance="o1", name="acme", email="web@acme.example",
                   sites=["a.org", "b.org"], revoke=["c.org"])
    assert client.commands("octopus", given) == [
        ["octopus", "client", "add", "o1", "acme", "--email", "web@acme.example"],
        ["octopus", "client", "grant", "o1", "acme", "a.org"],
        ["octopus", "client", "grant", "o1", "acme", "b.org"],
        ["octopus", "client", "revoke", "o1", "acme", "c.org"]]
    assert client.commands("octopus", params(spec, instance="o1", name="acme",
                                             state="absent")) == [
        ["octopus", "client", "remove", "o1", "acme"]]


def test_barracuda_bootstraps_with_install_sh() -> None:
    given = params(barracuda.SPEC, installer="/root/barracuda/install.sh")
    assert barracuda.command(given, False, False) == ["bash", "/root/barracuda/install.sh",
                                                      "--yes", "--json"]
    assert barracuda.command(given, True, True) == [barracuda.TOOL, "install", "--dry-run",
                                                    "--json"]
    assert barracuda.command(given, True, False) is None
    assert barracuda.command(params(barracuda.SPEC), False, True) == [
        barracuda.TOOL, "install", "--yes", "--json"]


def test_an_option_given_as_a_flag_is_refused() -> None:
    argv: list[str] = []
    with pytest.raises(TypeError):
        tool.add_option(argv, "--email", True)
    tool.add_option(argv, "--email", "")
    tool.add_option(argv, "--email", None)
    assert argv == []
