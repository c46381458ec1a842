"""`octopus site add`: a site on one of the instance's platforms, with its database and
account, its files directories and its vhost, in one run. On a Drupal platform the site gets
a kept hash salt, a generated settings.php and a credentials file outside the platform; with
`--install` Drupal's installer runs in the same run (installer/octopus/sites/install.py).
A platform whose sites/DOMAIN/settings.php already exists holds an imported site: it is
taken over (the old settings.php is kept beside ours as settings.php.barracuda-orig)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from installer.config import Config
from installer.drupal import detect
from installer.drupal.drush import DrupalTool, new_admin_password
from installer.drupal.settings import new_hash_salt
from installer.errors import ConfigError, UsageError
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.components import Phase, resolve_php
from installer.octopus.loader import load_instance
from installer.octopus.model import SiteRecord
from installer.octopus.names import check_domain, check_site_name, db_identifier
from installer.octopus.sites.common import (
    DB_NAME_MAX,
    DB_USER_MAX,
    DEFAULT_SETTINGS,
    SiteSettings,
    check_database_free,
    check_free,
    converge,
)
from installer.octopus.sites.drupal import PHP_BINARY
from installer.octopus.sites.install import InstallOptions, SiteInstall
from installer.plan import Builder, Component
from installer.runlog import Redactor
from installer.stack.secrets import generate


def site_add(name: str, domain: str, platform: str, aliases: Sequence[str], php: str,
             settings: SiteSettings = DEFAULT_SETTINGS,
             install: InstallOptions | None = None) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        site_domain = check_domain(domain)
        alias_names = [check_domain(a, "alias") for a in aliases]
        instance = model.existing(facts.target, name)
        check_free(facts, [site_domain, *alias_names])
        loaded = load_instance(config, facts, redactor, instance)
        if not any(p.name == platform for p in loaded.state.platforms):
            known = " ".join(p.name for p in loaded.state.platforms) or "none"
            raise ConfigError(f'instance {name} has no platform "{platform}" (platforms: '
                              f"{known}); add it with `octopus platform add`")
        version = ""
        if php:
            version = resolve_php(loaded.state.config, "--php", php, loaded.stack)
        code = loaded.state.codebases.get(platform)
        drupal = code is not None and code.is_drupal
        if code is not None:
            detect.require_php(code, version or loaded.state.php, instance=name)
        if install is not None and (code is None or not drupal):
            raise UsageError(f"--install: platform {platform} is not Drupal (nothing to "
                             "install); add the site without --install")
        docroot = code.docroot_rel if code is not None else ""
        docroot_dir = facts.target.path(instance.docroot(platform, docroot))
        real_settings = docroot_dir / "sites" / site_domain / "settings.php"
        # sites/DOMAIN already there: an imported site (its settings.php) is taken over,
        # anything else belongs to no site and is refused.
        check_site_name(site_domain, None if real_settings.is_file() else docroot_dir)
        if install is not None and real_settings.is_file():
            raise ConfigError(f"{real_settings}: an existing site; add it without --install "
                              "to take it over")
        db_name = db_identifier(name, site_domain, DB_NAME_MAX)
        db_user = db_identifier(name, site_domain, DB_USER_MAX)
        check_database_free(facts, db_name, db_user)
        password = generate(int(loaded.state.config["_STRONG_PASSWORDS"]))
        redactor.add(password)
        salt = new_hash_salt() if drupal else ""
        redactor.add(salt)
        site = SiteRecord(domain=site_domain, platform=platform, db_name=db_name,
                          db_user=db_user, db_password=password, aliases=tuple(alias_names),
                          php=version, docroot=docroot, hash_salt=salt,
                          installed=install is not None,
                          profile=install.profile if install is not None else "")
        site = settings.applied(site, facts)
        state = replace(loaded.state, sites=[*loaded.state.sites, site])
        components = converge(replace(loaded, state=state))
        if install is not None and code is not None:
            components.append(_installer(loaded.state.config, instance, site, code,
                                         version or loaded.state.php, install, redactor))
        return components

    return build


def _installer(config: Config, instance: model.Instance, site: SiteRecord,
               code: detect.Platform, php: str, options: InstallOptions,
               redactor: Redactor) -> Component:
    """The install resource, every input checked before the plan: the profile, a Drush for
    Drupal 8+, the PHP binary."""
    if code.profiles and options.profile not in code.profiles:
        raise UsageError(f"--profile {options.profile}: platform {site.platform} offers "
                         f"{', '.join(code.profiles)}")
    DrupalTool.for_platform(code, php=PHP_BINARY.format(version=php))  # no Drush: one line
    admin_password = new_admin_password()
    redactor.add(admin_password)
    email = options.admin_email or str(config["_MY_EMAIL"] or "")
    options = replace(options, admin_email=email)
    return Component(f"{instance.name}-install-{site.domain}", [
        SiteInstall(instance=instance, site=site, platform=code, php=php, options=options,
                    admin_password=admin_password)], phase=Phase.INSTALL)
