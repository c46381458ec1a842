#!/usr/bin/python
# GNU General Public License v2.0 or later
"""boa.hosting.platform: a platform (codebase) of an octopus instance."""

from __future__ import annotations

DOCUMENTATION = r"""
module: platform
short_description: A platform (codebase) of an octopus instance
description:
  - C(octopus platform add) when missing, C(octopus platform verify) when present (a
    converge that reads the tree again), C(octopus platform remove) when absent.
options:
  instance: {description: The instance., required: true, type: str}
  name: {description: The platform's name., required: true, type: str}
  path: {description: Copy the codebase from this directory of the server., type: str}
  git: {description: Clone the codebase from this git URL., type: str}
  ref: {description: The branch or tag (with git)., type: str}
  state: {description: present or absent., type: str, default: present, choices: [present, absent]}
"""

EXAMPLES = r"""
- boa.hosting.platform: {instance: o1, name: d7, path: /srv/code/pressflow-7}
"""

RETURN = r"""
changes: {description: The tool's changes (planned in check mode)., type: list, returned: always}
"""

from typing import Any  # noqa: E402

from ansible_collections.boa.hosting.plugins.module_utils.tool import (  # noqa: E402
    Argv,
    add_option,
    apply,
    listed,
    tool,
)

SPEC: dict[str, Any] = {
    "instance": {"type": "str", "required": True},
    "name": {"type": "str", "required": True},
    "path": {"type": "str"},
    "git": {"type": "str"},
    "ref": {"type": "str"},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
}


def commands(octopus: str, params: dict[str, Any], exists: bool) -> list[Argv]:
    instance, name = params["instance"], params["name"]
    if params["state"] == "absent":
        return [[octopus, "platform", "remove", instance, name]] if exists else []
    if exists:
        return [[octopus, "platform", "verify", instance, name]]
    argv = [octopus, "platform", "add", instance, name]
    add_option(argv, "--path", params.get("path"))
    add_option(argv, "--git", params.get("git"))
    add_option(argv, "--ref", params.get("ref"))
    return [argv]


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=SPEC, supports_check_mode=True,
                           mutually_exclusive=[("path", "git")])
    octopus = tool(module, "octopus")
    params = module.params
    rows = listed(module, octopus, params["instance"], "platform") or []
    exists = any(p.get("name") == params["name"] for p in rows)
    apply(module, commands(octopus, params, exists))


if __name__ == "__main__":
    main()
