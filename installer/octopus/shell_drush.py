"""Drush for the tenant accounts: `octopus-drush DOMAIN VERB`, started by the limited shell
through sudo (the only command sudo lets the access group run), as root. It checks that
the calling account (SUDO_USER, set by sudo) may use the site: the instance's FTP user has
every site of its instance, a client the sites its record grants it. Then the verb runs
exactly as octopus runs it (the platform's Drush on Drupal 8 and later, the tool's own
bootstrap on Drupal 7) as the instance's user: the site's credentials, which the account
cannot read, stay with the instance. Only the verbs status, cron, cache-clear, updatedb
and user-login exist; nothing of the caller's environment or arguments reaches Drupal but
the site's name."""

from __future__ import annotations

import os
import sys

from installer.errors import BarracudaError
from installer.octopus import access, model
from installer.octopus.names import check_domain
from installer.octopus.sites.drupal import run_as, site_uri, tool
from installer.octopus.sites.login import drupal_site
from installer.runner import SubprocessRunner
from installer.target import Target

VERBS = ("status", "cron", "cache-clear", "updatedb", "user-login")


def allowed(target: Target, caller: str, domain: str) -> str | None:
    """The instance whose site `domain` the account `caller` may use, or None."""
    for name in model.instance_names(target):
        instance = model.Instance(name)
        if caller == instance.ftp_user:
            if any(s.domain == domain for s in model.sites(target, instance)):
                return name
            return None
        record = access.AccessState(access.read_records(target, instance)).record(caller)
        if record is not None and record.kind == access.CLIENT:
            return name if domain in record.sites else None
    return None


def run(caller: str, domain: str, verb: str) -> str:
    target = Target()
    name = allowed(target, caller, domain)
    if name is None:
        raise PermissionError(f"{domain} is not a site of {caller}")
    found = drupal_site(target, name, domain)
    drupal = tool(found.instance, found.platform, found.php)
    runner, uri = SubprocessRunner(), site_uri(found.site)
    if verb == "status":
        status = drupal.parse_status(run_as(runner, found.instance, drupal.status(uri=uri)))
        pending = "" if status.pending_updates is None else \
            f"\npending updates  : {status.pending_updates}"
        return (f"site             : {domain}\nDrupal version   : {status.version}\n"
                f"site name        : {status.site_name}\ninstall profile  : {status.profile}\n"
                f"database         : {'Connected' if status.db else 'not connected'}\n"
                f"bootstrap        : {'Successful' if status.bootstrap else status.error}"
                f"{pending}")
    if verb == "cron":
        drupal.parse_cron(run_as(runner, found.instance, drupal.cron(uri=uri)))
        return f"{domain}: cron ran"
    if verb == "cache-clear":
        drupal.parse_cache_rebuild(run_as(runner, found.instance,
                                          drupal.cache_rebuild(uri=uri)))
        return f"{domain}: caches cleared"
    if verb == "updatedb":
        done = drupal.parse_updatedb(run_as(runner, found.instance, drupal.updatedb(uri=uri)))
        return f"{domain}: " + ("; ".join(done) if done else "no pending updates")
    return drupal.parse_user_login(run_as(runner, found.instance,
                                          drupal.user_login(uri=uri)))


def main(argv: list[str]) -> int:
    caller = os.environ.get("SUDO_USER", "")
    if os.geteuid() != 0 or not caller or len(argv) != 3 or argv[2] not in VERBS:
        print(f"usage (through the limited shell): drush @DOMAIN {'|'.join(VERBS)}",
              file=sys.stderr)
        return 2
    try:
        print(run(caller, check_domain(argv[1]), argv[2]))
    except (BarracudaError, PermissionError) as exc:
        print(f"drush: {exc}", file=sys.stderr)
        return 1
    return 0
