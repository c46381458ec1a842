#!/usr/bin/python
# GNU General Public License v2.0 or later
"""boa.hosting.barracuda: the machine converged by `barracuda install`, bootstrapped by a
checkout's install.sh."""

from __future__ import annotations

DOCUMENTATION = r"""
module: barracuda
short_description: The machine's stack, converged by barracuda install
description:
  - With installer, runs C(install.sh --yes) of that checkout (it installs or updates the
    tool, then runs C(barracuda install)); without, C(barracuda install --yes). changed is
    true when the tool's converge changed something or install.sh switched the tool to
    another build (/opt/barracuda points elsewhere).
  - Check mode is C(barracuda install --dry-run) of the tool already installed (a machine
    without the tool reports changed - install.sh would bootstrap it).
options:
  installer: {description: install.sh of a checkout on the server., type: path}
"""

EXAMPLES = r"""
- boa.hosting.barracuda: {installer: /root/barracuda/install.sh}
"""

RETURN = r"""
changes: {description: The tool's changes (planned in check mode)., type: list, returned: always}
"""

import os  # noqa: E402
from typing import Any  # noqa: E402

from ansible_collections.boa.hosting.plugins.module_utils.tool import (  # noqa: E402
    Argv,
    Outcome,
    converge_argv,
    last_json,
    run,
)

SPEC: dict[str, Any] = {"installer": {"type": "path"}}
TOOL = "/usr/local/sbin/barracuda"
LINK = "/opt/barracuda"


def command(params: dict[str, Any], check: bool, installed: bool) -> Argv | None:
    """The command to run (None: nothing to ask, the tool is not there yet in check mode)."""
    if check:
        return converge_argv([TOOL, "install"], True) if installed else None
    if params.get("installer"):
        return ["bash", params["installer"], "--yes", "--json"]
    return converge_argv([TOOL, "install"], False)


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=SPEC, supports_check_mode=True)
    installed = os.path.exists(TOOL)  # noqa: PTH110 (as the rest of Ansible's modules)
    argv = command(module.params, module.check_mode, installed)
    if argv is None:
        module.exit_json(changed=True, commands=[], changes=[],
                         msg="barracuda is not installed: install.sh would bootstrap it")
    before = os.path.realpath(LINK) if os.path.lexists(LINK) else ""
    outcome = Outcome()
    _, out, _ = run(module, argv, outcome)
    outcome.take(argv, last_json(out))
    after = os.path.realpath(LINK) if os.path.lexists(LINK) else ""
    switched: list[str] = [] if before == after else [f"{LINK} -> {after}"]
    outcome.changed = outcome.changed or bool(switched)
    module.exit_json(**outcome.result(module._diff, switched=switched))


if __name__ == "__main__":
    main()
