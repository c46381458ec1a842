#!/usr/bin/python
# GNU General Public License v2.0 or later
"""boa.hosting.instance: an octopus instance (oN), present or absent."""

from __future__ import annotations

DOCUMENTATION = r"""
module: instance
short_description: An octopus hosting instance (o1, o2 ...)
description:
  - C(octopus install NAME) when present (a converge, so a second run changes nothing),
    C(octopus remove NAME) when absent. Check mode is the tool's C(--dry-run); diff mode
    shows the tool's diffs; a bad argument fails with the tool's one-line error.
options:
  name: {description: The instance, e.g. o1., required: true, type: str}
  email: {description: The owner's address (_MY_EMAIL)., type: str}
  php: {description: The PHP version (_PHP_FPM_VERSION)., type: str}
  force: {description: With state=absent, remove it with its sites., type: bool, default: false}
  state: {description: present or absent., type: str, default: present, choices: [present, absent]}
"""

EXAMPLES = r"""
- boa.hosting.instance: {name: o1, email: ops@example.org}
"""

RETURN = r"""
changes: {description: The tool's changes (planned in check mode)., type: list, returned: always}
commands: {description: The commands run., type: list, returned: always}
"""

from typing import Any  # noqa: E402

from ansible_collections.boa.hosting.plugins.module_utils.tool import (  # noqa: E402
    Argv,
    add_option,
    apply,
    query,
    tool,
)

SPEC: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "email": {"type": "str"},
    "php": {"type": "str"},
    "force": {"type": "bool", "default": False},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
}


def commands(octopus: str, params: dict[str, Any], exists: bool) -> list[Argv]:
    """The converges that bring instance `name` to `state`."""
    name = params["name"]
    if params["state"] == "absent":
        if not exists:
            return []
        argv = [octopus, "remove", name]
        if params.get("force"):
            argv.append("--force")
        return [argv]
    argv = [octopus, "install", name]
    add_option(argv, "--email", params.get("email"))
    add_option(argv, "--php", params.get("php"))
    return [argv]


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=SPEC, supports_check_mode=True)
    octopus = tool(module, "octopus")
    exists = module.params["name"] in query(module, [octopus, "list"]).get("instances", [])
    apply(module, commands(octopus, module.params, exists))


if __name__ == "__main__":
    main()
