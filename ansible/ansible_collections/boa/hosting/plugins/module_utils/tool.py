# GNU General Public License v2.0 or later
"""What every module of boa.hosting shares: running one command of the tool (barracuda or
octopus) with --json and reading its answer. The modules decide nothing the tool decides:
they map their options to its arguments, ask it, and report what it said.

* A converge runs with `--yes --json` (Ansible's check mode: `--dry-run --json`). The tool
  prints one JSON document on stdout: `{"results": [...], "summary": ...}` after applying,
  `{"plan": [...], "pending": N}` for a dry run. `changed` is true exactly when a result
  says "changed" (a dry run: when changes are pending).
* Diff mode shows the tool's own diffs: one entry per planned or made change.
* A failure (a bad argument, a refused input, a run rolled back) is the tool's one-line
  `error: ...` on stderr and a non-zero exit: the task fails with that line.

Pure functions (no Ansible import here), so that their mapping is tested without Ansible
(tests/unit/test_ansible_modules.py); `run` takes the module only to call run_command."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

Argv = list[str]


def converge_argv(argv: Sequence[str], check: bool) -> Argv:
    """The converge command `argv` as the module runs it."""
    return [*argv, "--dry-run" if check else "--yes", "--json"]


def last_json(stdout: str) -> dict[str, Any]:
    """The last JSON object the tool printed on stdout ({} when there is none)."""
    decoder = json.JSONDecoder()
    found: dict[str, Any] = {}
    index = 0
    text = stdout.strip()
    while index < len(text):
        start = text.find("{", index)
        if start < 0:
            break
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            index = start + 1
            continue
        if isinstance(value, dict):
            found = value
        index = end
    return found


def changes_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every change the tool planned (a dry run) or made (a run), in its order."""
    steps = payload.get("plan") if "plan" in payload else payload.get("results")
    out: list[dict[str, Any]] = []
    for step in steps or []:
        for change in step.get("changes") or []:
            out.append(dict(change, component=step.get("component", "")))
    return out


def changed_of(payload: dict[str, Any]) -> bool:
    """Whether the tool changed (or, for a dry run, would change) something."""
    if "plan" in payload:
        return int(payload.get("pending") or 0) > 0
    return any(r.get("status") == "changed" for r in payload.get("results") or [])


def diff_of(changes: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Ansible's diff entries: one per change, a line naming the resource, the action and
    the reason, then the tool's diff as the tool shows it (a secret file's content is
    never shown by the tool, so not here either)."""
    entries = []
    for change in changes:
        resource = str(change.get("resource", ""))
        text = f"{resource}: {change.get('action', '')}: {change.get('reason', '')}\n"
        if change.get("diff"):
            text += str(change["diff"])
        entries.append({"before_header": resource, "after_header": resource,
                        "prepared": text if text.endswith("\n") else text + "\n"})
    return entries


def error_line(stderr: str, stdout: str = "") -> str:
    """The tool's one-line error (its last `error: ` line), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1][len("error: "):]
    if lines:
        return lines[-1]
    rest = [line.strip() for line in stdout.splitlines() if line.strip()]
    return rest[-1] if rest else "the command failed without a message"


def add_option(argv: Argv, flag: str, value: Any) -> None:
    """`flag value` when the option was given (None and "" are "not given")."""
    if value is None or value == "":
        return
    if isinstance(value, bool):
        raise TypeError(f"{flag} takes a value, not a flag")
    argv += [flag, str(value)]


def add_switch(argv: Argv, flag: str, off: str | None, value: bool | None) -> None:
    """`flag` for true, `off` for false, nothing for None."""
    if value is True:
        argv.append(flag)
    elif value is False and off:
        argv.append(off)


class Outcome:
    """What one or more commands of a task did, in Ansible's words."""

    def __init__(self) -> None:
        self.changed = False
        self.changes: list[dict[str, Any]] = []
        self.commands: list[Argv] = []
        self.summaries: list[str] = []

    def take(self, argv: Argv, payload: dict[str, Any]) -> None:
        self.commands.append(argv)
        self.changed = self.changed or changed_of(payload)
        self.changes += changes_of(payload)
        if payload.get("summary"):
            self.summaries.append(str(payload["summary"]))

    def result(self, diff: bool, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"changed": self.changed, "commands": self.commands,
                               "changes": self.changes, "summary": "; ".join(self.summaries)}
        if diff:
            out["diff"] = diff_of(self.changes)
        out.update(extra)
        return out


def run(module: Any, argv: Argv, outcome: Outcome | None = None) -> tuple[int, str, str]:
    """Run `argv`; fail the task with the tool's one-line error when it exits non-zero."""
    rc, out, err = module.run_command(argv, environ_update={"LANG": "C.UTF-8",
                                                            "TERM": "dumb"})
    if rc != 0:
        done = outcome.commands if outcome else []
        module.fail_json(msg=error_line(err, out), rc=rc, cmd=argv, stderr=err,
                         commands_done=done)
    return rc, out, err


def converge(module: Any, outcome: Outcome, argv: Argv) -> None:
    """Run the converge `argv` (check mode: a dry run) and add what it did to `outcome`."""
    full = converge_argv(argv, bool(module.check_mode))
    _, out, _ = run(module, full, outcome)
    outcome.take(full, last_json(out))


def query(module: Any, argv: Argv) -> dict[str, Any]:
    """A read-only command's --json answer."""
    _, out, _ = run(module, [*argv, "--json"])
    return last_json(out)


def tool(module: Any, name: str) -> str:
    """The path of `barracuda` or `octopus` on the managed host."""
    path: str = module.get_bin_path(name, required=True, opt_dirs=["/usr/local/sbin"])
    return path


def apply(module: Any, commands: list[Argv]) -> None:
    """Run the converges `commands` in order and end the task with what they did."""
    outcome = Outcome()
    for argv in commands:
        converge(module, outcome, argv)
    module.exit_json(**outcome.result(module._diff))


def listed(module: Any, octopus: str, instance: str, what: str) -> list[dict[str, Any]] | None:
    """The rows of `octopus WHAT list INSTANCE --json` (platforms or sites), None when the
    instance does not exist. A present state on a missing instance in check mode ends the
    task here as "would change" (the instance comes in the same run); an absent state on a
    missing instance, as unchanged."""
    if instance in query(module, [octopus, "list"]).get("instances", []):
        rows: list[dict[str, Any]] = query(module, [octopus, what, "list", instance]).get(
            f"{what}s", [])
        return rows
    present = module.params["state"] == "present"
    if module.check_mode or not present:
        module.exit_json(changed=present, commands=[], changes=[],
                         msg=f"instance {instance} does not exist (yet)")
    return None
