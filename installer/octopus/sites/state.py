"""`octopus site disable|enable oN DOMAIN`: a site taken off the web and back, its data
kept. Disabled, the site's record says so and the instance converges from it: the vhost
answers every name (HTTP and HTTPS) with the site disabled page (503 and Retry-After) and
never reaches PHP, and the instance's cron file has no job for the site. Its code, database,
files, settings.php and credentials stay as they are, so enable renders the full vhost and
the cron job again and the site serves what it served before. The run ends with the site's
health checked the way it now should be (the disabled page on every name, or Drupal
bootstrapping and the front page answering)."""

from __future__ import annotations

from dataclasses import replace

from installer.config import Config
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.loader import load_instance
from installer.octopus.sites.common import converge, find_site
from installer.octopus.sites.verify import health_component
from installer.plan import Builder, Component
from installer.runlog import Redactor


def site_state(name: str, domain: str, disabled: bool) -> Builder:
    """The builder of `site disable` (disabled=True) and `site enable` (False)."""

    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        site = find_site(loaded, domain)
        new = replace(site, disabled=disabled)
        state = replace(loaded.state, sites=[new if s is site else s
                                             for s in loaded.state.sites])
        return [*converge(replace(loaded, state=state)), health_component(state, [new])]

    return build
