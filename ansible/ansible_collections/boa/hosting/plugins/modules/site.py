#!/usr/bin/python
# GNU General Public License v2.0 or later
"""boa.hosting.site: a site of an octopus instance; exported to or imported from an
archive to move it between servers."""

from __future__ import annotations

DOCUMENTATION = r"""
module: site
short_description: A site of an octopus instance
description:
  - present, missing - C(octopus site add) (with install, Drupal's installer in the same
    run), or C(octopus site import) when archive is given (a site moved from another
    server).
  - present, there - C(octopus site set) with the vhost settings given, else C(octopus site
    verify); both converge (a second run changes nothing).
  - absent - C(octopus site remove) (the tool backs the site up first).
  - exported - C(octopus site export ... --to archive); the site is only read.
options:
  instance: {description: The instance., required: true, type: str}
  domain: {description: The site's domain., required: true, type: str}
  platform:
    description: The platform (required to add; to import, default the archive's).
    type: str
  aliases:
    description: Other names (when the site is added).
    type: list
    elements: str
    default: []
  php: {description: The site's PHP version (when added)., type: str}
  type: {description: The vhost type (drupal, drupal7, php, auto)., type: str}
  hsts: {description: Strict-Transport-Security on HTTPS., type: bool}
  cache_ttl: {description: Speed Booster seconds., type: int}
  install: {description: Install Drupal when the site is added., type: bool, default: false}
  profile: {description: The install profile., type: str}
  site_name: {description: The site's name (with install)., type: str}
  admin_email: {description: The admin account's address (with install)., type: str}
  locale: {description: The site's language (with install)., type: str}
  archive:
    description: The archive to export to, or to import from (an absolute path on the server).
    type: path
  state:
    description: present, absent or exported.
    type: str
    default: present
    choices: [present, absent, exported]
"""

EXAMPLES = r"""
- boa.hosting.site: {instance: o1, domain: www.example.org, platform: d7, install: true}
- boa.hosting.site:
    instance: o1
    domain: www.example.org
    state: exported
    archive: /root/www.tar.zst
"""

RETURN = r"""
changes: {description: The tool's changes (planned in check mode)., type: list, returned: always}
"""

from typing import Any  # noqa: E402

from ansible_collections.boa.hosting.plugins.module_utils.tool import (  # noqa: E402
    Argv,
    add_option,
    add_switch,
    apply,
    listed,
    tool,
)

SPEC: dict[str, Any] = {
    "instance": {"type": "str", "required": True},
    "domain": {"type": "str", "required": True},
    "platform": {"type": "str"},
    "aliases": {"type": "list", "elements": "str", "default": []},
    "php": {"type": "str"},
    "type": {"type": "str"},
    "hsts": {"type": "bool"},
    "cache_ttl": {"type": "int"},
    "install": {"type": "bool", "default": False},
    "profile": {"type": "str"},
    "site_name": {"type": "str"},
    "admin_email": {"type": "str"},
    "locale": {"type": "str"},
    "archive": {"type": "path"},
    "state": {"type": "str", "default": "present",
              "choices": ["present", "absent", "exported"]},
}


def _settings(argv: Argv, params: dict[str, Any]) -> Argv:
    add_option(argv, "--type", params.get("type"))
    add_switch(argv, "--hsts", "--no-hsts", params.get("hsts"))
    if params.get("cache_ttl") is not None:
        argv += ["--cache-ttl", str(params["cache_ttl"])]
    return argv


def commands(octopus: str, params: dict[str, Any], exists: bool) -> list[Argv]:
    instance, domain, state = params["instance"], params["domain"], params["state"]
    if state == "absent":
        return [[octopus, "site", "remove", instance, domain]] if exists else []
    if state == "exported":
        return [[octopus, "site", "export", instance, domain, "--to", params.get("archive")
                 or ""]]
    if exists:
        settings = _settings([], params)
        if settings:
            return [[octopus, "site", "set", instance, domain, *settings]]
        return [[octopus, "site", "verify", instance, domain]]
    if params.get("archive"):
        argv = [octopus, "site", "import", instance, params["archive"], "--domain", domain]
        add_option(argv, "--platform", params.get("platform"))
        return [argv]
    argv = [octopus, "site", "add", instance, domain]
    add_option(argv, "--platform", params.get("platform"))
    for alias in params.get("aliases") or []:
        argv += ["--alias", alias]
    add_option(argv, "--php", params.get("php"))
    _settings(argv, params)
    if params.get("install"):
        argv.append("--install")
        add_option(argv, "--profile", params.get("profile"))
        add_option(argv, "--site-name", params.get("site_name"))
        add_option(argv, "--admin-email", params.get("admin_email"))
        add_option(argv, "--locale", params.get("locale"))
    return [argv]


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=SPEC, supports_check_mode=True,
                           required_if=[("state", "exported", ("archive",))])
    octopus = tool(module, "octopus")
    params = module.params
    wanted = params["domain"].lower()
    rows = listed(module, octopus, params["instance"], "site") or []
    exists = any(wanted == s.get("domain") or wanted in s.get("aliases", []) for s in rows)
    apply(module, commands(octopus, params, exists))


if __name__ == "__main__":
    main()
