"""`octopus site add`: a site on one of the instance's platforms, with its database and
account, its files directories and its vhost, in one run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from installer.config import Config
from installer.errors import ConfigError
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.components import resolve_php
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
from installer.plan import Builder, Component
from installer.runlog import Redactor
from installer.stack.secrets import generate


def site_add(name: str, domain: str, platform: str, aliases: Sequence[str], php: str,
             settings: SiteSettings = DEFAULT_SETTINGS) -> Builder:
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
        check_site_name(site_domain, facts.target.path(instance.platform_dir(platform)))
        version = ""
        if php:
            version = resolve_php(loaded.state.config, "--php", php, loaded.stack)
        db_name = db_identifier(name, site_domain, DB_NAME_MAX)
        db_user = db_identifier(name, site_domain, DB_USER_MAX)
        check_database_free(facts, db_name, db_user)
        password = generate(int(loaded.state.config["_STRONG_PASSWORDS"]))
        redactor.add(password)
        site = SiteRecord(domain=site_domain, platform=platform, db_name=db_name,
                          db_user=db_user,
                          db_password=password, aliases=tuple(alias_names), php=version)
        site = settings.applied(site, facts)
        state = replace(loaded.state, sites=[*loaded.state.sites, site])
        return converge(replace(loaded, state=state))

    return build


