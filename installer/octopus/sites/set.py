"""`octopus site set`: change a site's Nginx settings (its record, then its vhost, in one
run)."""

from __future__ import annotations

from dataclasses import replace

from installer.config import Config
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.loader import load_instance
from installer.octopus.sites.common import SiteSettings, converge, find_site
from installer.plan import Builder, Component
from installer.runlog import Redactor


def site_set(name: str, domain: str, settings: SiteSettings) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        site = find_site(loaded, domain)
        new = settings.applied(site, facts)
        state = replace(loaded.state, sites=[new if s is site else s
                                             for s in loaded.state.sites])
        return converge(replace(loaded, state=state))

    return build


