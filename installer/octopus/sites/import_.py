"""`octopus site import oN FILE [--domain NEW] [--platform P]`: the site of an archive made
by `octopus site export` (or `octopus backup oN DOMAIN`) on another server, brought into
instance oN of this one.

Unlike `octopus restore`, which brings a site back where it was (its own credentials, its
platform's code from the archive when needed), an import lands on a platform this instance
already has, of the same core as the one the site ran on (Drupal 7 onto Drupal 7, Drupal 11
onto Drupal 11), always with a database, account and password made here, and optionally
under another name (--domain: the aliases stay behind, they belong to the old name). The
archive is checked before anything changes (every member listed through zstd, the manifest
read) and the dump verified against its size and sha256 before it is loaded; the converge
then renders settings.php and the credentials file for this server. A failed run takes the
files, the database and the records away again (installer/octopus/sites/restore.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from installer.config import Config
from installer.errors import ConfigError
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.loader import load_instance
from installer.octopus.model import PlatformRecord
from installer.octopus.names import check_domain
from installer.octopus.sites.common import check_free
from installer.octopus.sites.restore import brought_in, new_credentials, open_source
from installer.plan import Builder, Component
from installer.runlog import Redactor


def core_of(platform: PlatformRecord) -> tuple[str, str]:
    """(core, major version) of a platform: ("drupal7", "7"), ("drupal", "11"), ("php", "")."""
    core = str(platform.detected.get("core", "")) or platform.kind
    version = str(platform.detected.get("version", ""))
    return core, version.split(".")[0] if core.startswith("drupal") else ""


def site_import(name: str, archive: str, domain: str | None = None,
                platform: str | None = None) -> Builder:
    """Bring the one site of `archive` into instance `name` (as `domain`, on `platform`)."""

    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        source = open_source(facts.runner, Path(archive).resolve(), None)
        old = source.site
        wanted = old.platform if platform is None else platform
        loaded = load_instance(config, facts, redactor, instance)
        chosen = next((p for p in loaded.state.platforms if p.name == wanted), None)
        held = " ".join(p.name for p in loaded.state.platforms) or "none"
        ran_on = source.platform.describe() if source.platform else "an unknown core"
        if chosen is None:
            raise ConfigError(f"instance {name} has no platform {wanted} (platforms: {held}): "
                              f"add one with `octopus platform add` first ({old.domain} ran "
                              f"on {ran_on}), or pick one with --platform")
        if source.platform is not None and core_of(chosen) != core_of(source.platform):
            raise ConfigError(f"platform {wanted} of {name} is {chosen.describe()}, "
                              f"{old.domain} ran on {ran_on}: pick a platform of the same "
                              "core with --platform")
        renamed = check_domain(domain) if domain else old.domain
        site = replace(old, domain=renamed, platform=chosen.name, docroot=chosen.docroot,
                       aliases=old.aliases if renamed == old.domain else ())
        check_free(facts, site.names)
        site = new_credentials(facts, loaded, site, redactor)
        return brought_in(loaded, source, site, list(loaded.state.platforms), [])

    return build
