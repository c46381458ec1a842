#!/usr/bin/python
# GNU General Public License v2.0 or later
"""boa.hosting.client: a client (a hosting customer's account) of an octopus instance and
the sites it is granted."""

from __future__ import annotations

DOCUMENTATION = r"""
module: client
short_description: A client of an octopus instance and the sites granted to it
description:
  - present - C(octopus client add INSTANCE NAME --email EMAIL), then C(octopus client grant
    INSTANCE NAME DOMAIN) for each of sites; absent - C(octopus client remove INSTANCE
    NAME). Each is a converge of the tool (a second run changes nothing); revoking is
    C(octopus client revoke) for each of revoke.
options:
  instance: {description: The instance., required: true, type: str}
  name: {description: The client's name., required: true, type: str}
  email: {description: The client's address., type: str}
  sites: {description: Domains granted to the client., type: list, elements: str, default: []}
  revoke: {description: Domains taken from the client., type: list, elements: str, default: []}
  state: {description: present or absent., type: str, default: present, choices: [present, absent]}
"""

EXAMPLES = r"""
- boa.hosting.client: {instance: o1, name: acme, email: web@acme.example, sites: [www.acme.example]}
"""

RETURN = r"""
changes: {description: The tool's changes (planned in check mode)., type: list, returned: always}
"""

from typing import Any  # noqa: E402

from ansible_collections.boa.hosting.plugins.module_utils.tool import (  # noqa: E402
    Argv,
    add_option,
    apply,
    tool,
)

SPEC: dict[str, Any] = {
    "instance": {"type": "str", "required": True},
    "name": {"type": "str", "required": True},
    "email": {"type": "str"},
    "sites": {"type": "list", "elements": "str", "default": []},
    "revoke": {"type": "list", "elements": "str", "default": []},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
}


def commands(octopus: str, params: dict[str, Any]) -> list[Argv]:
    instance, name = params["instance"], params["name"]
    if params["state"] == "absent":
        return [[octopus, "client", "remove", instance, name]]
    add = [octopus, "client", "add", instance, name]
    add_option(add, "--email", params.get("email"))
    grants = [[octopus, "client", "grant", instance, name, d] for d in params.get("sites") or []]
    revokes = [[octopus, "client", "revoke", instance, name, d]
               for d in params.get("revoke") or []]
    return [add, *grants, *revokes]


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=SPEC, supports_check_mode=True)
    apply(module, commands(tool(module, "octopus"), module.params))


if __name__ == "__main__":
    main()
