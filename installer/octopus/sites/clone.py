"""`octopus site clone oN SRC NEW [--platform P]`: a full copy of a site under a new
domain, on its own platform or another one of the instance, in one run. The clone gets a
new database with a new account and password, a copy of the source's directory (files,
private files, its own modules and themes), its own salt, settings.php, credentials file,
vhost and cron line; the paths of the old directory are rewritten in its database
(installer/octopus/sites/rewrite.py says which), the new platform's database updates run
when it is another platform, and its caches are cleared. Aliases and certificates are not
copied. The source is only read (its database in one transaction): it keeps serving."""

from __future__ import annotations

from dataclasses import replace

from installer.config import Config
from installer.drupal import detect
from installer.drupal.settings import new_hash_salt
from installer.errors import ConfigError, UsageError
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.components import InstanceState, Phase
from installer.octopus.loader import load_instance
from installer.octopus.model import SiteRecord
from installer.octopus.names import check_domain, check_site_name, db_identifier
from installer.octopus.sites.common import (
    DB_NAME_MAX,
    DB_USER_MAX,
    check_database_free,
    check_free,
    converge,
    find_site,
)
from installer.octopus.sites.moves import DatabaseCopy, SiteCopy, SiteDatabase
from installer.octopus.sites.rewrite import Rename
from installer.octopus.sites.verify import health_component
from installer.plan import Builder, Component
from installer.runlog import Redactor
from installer.stack.secrets import generate


def destination(state: InstanceState, site: SiteRecord, platform: str,
                what: str) -> detect.Platform:
    """The Drupal platform `platform` of the instance, checked for `site` (same core
    family, not older than the site's code, a PHP it runs on); one-line errors."""
    if not any(p.name == platform for p in state.platforms):
        known = " ".join(p.name for p in state.platforms) or "none"
        raise ConfigError(f'instance {state.instance.name} has no platform "{platform}" '
                          f"(platforms: {known})")
    code = state.codebases.get(platform)
    current = state.codebase(site)
    if code is None or not code.is_drupal or current is None:
        raise UsageError(f"{what} {site.domain}: only a Drupal site on a Drupal platform can "
                         f"be moved ({site.platform} -> {platform})")
    if code.core != current.core:
        raise UsageError(f"{what} {site.domain}: platform {platform} is Drupal {code.version}, "
                         f"the site runs Drupal {current.version}: another major version "
                         "needs a migration of its own, not a move")
    if current.version and code.version and (
            detect.version_tuple(code.version) < detect.version_tuple(current.version)):
        raise UsageError(f"{what} {site.domain}: platform {platform} is Drupal {code.version}, "
                         f"older than the site's {current.version}; code is never downgraded")
    if not state.managed_settings(site):
        raise UsageError(f"{what} {site.domain}: its settings.php is not written by octopus "
                         "(no kept salt): run `octopus site verify` on an installed site")
    detect.require_php(code, state.site_php(site), instance=state.instance.name)
    return code


def site_clone(name: str, source: str, new: str, platform: str = "") -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        domain = check_domain(new)
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        state = loaded.state
        site = find_site(loaded, source)
        where = platform or site.platform
        code = destination(state, site, where, "clone")
        check_free(facts, [domain])
        docroot = facts.target.path(instance.docroot(where, code.docroot_rel))
        check_site_name(domain, docroot)
        db_name = db_identifier(name, domain, DB_NAME_MAX)
        db_user = db_identifier(name, domain, DB_USER_MAX)
        check_database_free(facts, db_name, db_user)
        password = generate(int(state.config["_STRONG_PASSWORDS"]))
        salt = new_hash_salt()
        redactor.add(password)
        redactor.add(salt)
        clone = replace(site, domain=domain, platform=where, docroot=code.docroot_rel,
                        db_name=db_name, db_user=db_user, db_password=password,
                        hash_salt=salt, aliases=(), certificate="", certificate_key="",
                        installed=True)
        after = replace(state, sites=[*state.sites, clone])
        return [
            *converge(replace(loaded, state=after)),
            Component(f"{name}-clone-{domain}", [
                DatabaseCopy(site.db_name, db_name),
                SiteCopy(instance.site_dir(site), instance.site_dir(clone),
                         f"{instance.root}/backups"),
            ], phase=Phase.DATA),
            Component(f"{name}-clone-database-{domain}", [
                SiteDatabase(instance=instance, site=clone, platform=code,
                             php=after.site_php(clone), rename=Rename(site.domain, domain),
                             update=where != site.platform)], phase=Phase.INSTALL),
            health_component(after, [clone]),
        ]

    return build
