"""The machine's side of tenant access (profiles/access.yml): Debian's OpenSSH on _SSH_PORT,
key-only for the tenant accounts, and the two programs tenants run.

* sshd is configured through one drop-in (sshd_config.d/barracuda.conf, read first by
  Debian's sshd_config): the Port, and a `Match Group` block that makes every tenant account
  key-only, with its keys in root's files (one per account) and no forwarding. `sshd -t`
  must pass before sshd is reloaded; a failure rolls the drop-in back.
* The limited shell (installer/octopus/shell.py) and the Drush helper
  (installer/octopus/shell_drush.py) are small launchers of the tool's own Python; sudo
  lets a tenant account start the helper, nothing else (`visudo -c` checks the rule)."""

from __future__ import annotations

from typing import Any

from installer.config import Config
from installer.data import load_profile
from installer.plan import Component, Validator
from installer.resources.accounts import Group
from installer.resources.base import reload
from installer.resources.files import Directory, File
from installer.resources.system import Packages, Service
from installer.templates import render


def profile() -> dict[str, Any]:
    return load_profile("access")


def sshd_config(port: int) -> str:
    prof = profile()
    return render("ssh/sshd.conf.j2", {"port": port, "group": prof["group"],
                                       "keys_dir": prof["keys_dir"]})


def program(module: str) -> str:
    """The launcher of one of the tenants' programs (the shell, the Drush helper)."""
    return render("ssh/program.py.j2", {"python": profile()["python"], "module": module})


def gitconfig() -> str:
    """The only git configuration the limited shell's git reads (besides the repository's,
    which the same values given on its command line override)."""
    sections: dict[str, list[str]] = {}
    for key, value in profile()["shell"]["git_config"].items():
        section, _, name = str(key).rpartition(".")
        head = f'[{section.split(".")[0]} "{section.split(".", 1)[1]}"]' if "." in section \
            else f"[{section}]"
        sections.setdefault(head, []).append(f"\t{name} = {value}")
    return "".join(f"{head}\n" + "\n".join(lines) + "\n" for head, lines in sections.items())


def component(config: Config) -> Component:
    prof = profile()
    after = ("packages:access",)
    service = str(prof["service"])
    reloaded = (reload(service),)
    resources = [
        Packages("access", [str(p) for p in prof["packages"]]),
        Group(str(prof["group"])),
        Directory(str(prof["keys_dir"]), mode=0o755),
        Directory(str(prof["access_dir"]), mode=0o755),
        Directory(str(prof["privsep_dir"]), mode=0o755),
        File(str(prof["shell_program"]), content=program("shell"), mode=0o755, comment="",
             requires=after),
        File(str(prof["drush_helper"]), content=program("shell_drush"), mode=0o755,
             comment="", requires=after),
        File(str(prof["gitconfig"]), content=gitconfig(), mode=0o644),
        File(str(prof["sudoers"]), mode=0o440, requires=after, template="ssh/sudoers.j2",
             context={"group": prof["group"], "helper": prof["drush_helper"]}),
        File(str(prof["dropin"]), content=sshd_config(int(config["_SSH_PORT"])), mode=0o644,
             requires=after, notify=reloaded),
        Service(service, requires=after),
    ]
    return Component("ssh", resources, validators=[
        Validator([str(prof["sshd_binary"]), "-t"], "sshd -t"),
        Validator(["visudo", "-c", "-q", "-f", str(prof["sudoers"])], "visudo -c"),
    ])
