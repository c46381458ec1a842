"""`octopus site migrate oN DOMAIN --platform NEW [--domain NEWNAME]` (and `site rename`,
a migrate to the same platform under another name): a site moved to another platform of
the instance, in one run whose undo puts everything back.

In order: a verified archive of the site (as `site remove` makes); Drupal's maintenance
mode on; the site's directory copied to the new platform (the old one stays in place until
the run passed); its database dumped and the dump verified, then the new code's database
updates run on it (Drush `updatedb`, or for Drupal 7 the tool's own d7tool.php through
Drupal's update API), the paths of the old name rewritten on a rename, the caches cleared;
the record, settings.php and vhost rendered for the new place (Nginx reloaded); the old
directory (and on a rename the old record, vhost and credentials file) taken away;
maintenance mode off; the site checked (bootstrap, front page).

Any failure or interrupt undoes the run: the database is loaded back from its dump, the
copy is removed, the vhost and record are put back and Nginx reloaded, maintenance mode is
switched off on the old platform: the site serves from its old code and old data, and the
error says why (an update's own message). The database keeps its name and account."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from installer.config import Config
from installer.drupal import detect
from installer.drupal.detect import DRUPAL7
from installer.errors import ConfigError, UsageError
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.archive import Archive, archive_name, make_archive
from installer.octopus.components import InstanceState, Phase
from installer.octopus.loader import Loaded, load_instance
from installer.octopus.model import SiteRecord
from installer.octopus.names import check_domain, check_site_name
from installer.octopus.sites.clone import destination
from installer.octopus.sites.common import check_free, converge, find_site
from installer.octopus.sites.moves import Maintenance, SiteCopy, SiteDatabase
from installer.octopus.sites.rewrite import Rename
from installer.octopus.sites.verify import health_component
from installer.plan import Builder, Component
from installer.resources.base import Context
from installer.resources.files import Absent
from installer.resources.trees import TreeAbsent
from installer.runlog import Redactor


def profile_on(code: detect.Platform, profile: str) -> str:
    """The install profile a site of `profile` has on the platform `code`: the same name,
    or for Drupal 7 the profile that names it as its `old_short_name` (a renamed profile)."""
    if not profile or not code.profiles or profile in code.profiles:
        return profile
    if code.core == DRUPAL7:
        for name in code.profiles:
            if detect.d7_old_short_name(code, name) == profile:
                return name
    raise UsageError(f"the site's install profile {profile} is not on {code.root} (it offers "
                     f"{', '.join(code.profiles)}), nor one with old_short_name = {profile}")


def moved(state: InstanceState, site: SiteRecord, platform: str,
          domain: str) -> tuple[SiteRecord, detect.Platform]:
    """The site's record at its new place, and the new place's platform (checked)."""
    if platform == site.platform and domain == site.domain:
        raise UsageError(f"{site.domain} is already on platform {platform}")
    code = destination(state, site, platform, "migrate")
    return replace(site, platform=platform, domain=domain, docroot=code.docroot_rel,
                   profile=profile_on(code, site.profile)), code


def _done(loaded: Loaded, domain: str, platform: str, new_domain: str) -> bool:
    """The move was already made (a second run of the same command)."""
    name = new_domain or domain
    return any(s.domain == name and s.platform == platform for s in loaded.state.sites) and (
        not new_domain or new_domain == domain
        or not any(s.domain == domain for s in loaded.state.sites))


def site_migrate(name: str, domain: str, platform: str, new_domain: str = "") -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        wanted = check_domain(new_domain, "--domain") if new_domain else ""
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        state = loaded.state
        if _done(loaded, check_domain(domain), platform, wanted):
            return converge(loaded)  # nothing left to move: the plain converge
        site = find_site(loaded, domain)
        new, code = moved(state, site, platform, wanted or site.domain)
        renamed = new.domain != site.domain
        if renamed:
            check_free(facts, [new.domain])
        check_site_name(new.domain, facts.target.path(instance.docroot(platform, new.docroot)))
        old_code = state.codebase(site)
        if old_code is None:
            raise ConfigError(f"{site.domain}: its platform {site.platform} is not readable")
        after = replace(state, sites=[new if s is site else s for s in state.sites])
        old_dir, new_dir = instance.site_dir(site), instance.site_dir(new)
        archive = f"{instance.root}/backups/{archive_name(site.domain)}"
        records = [p for p in state.platforms if p.name == site.platform]

        def make(ctx: Context, out: Path) -> Path:
            return make_archive(ctx.runner, ctx.target, out, kind="site", instance=instance,
                                sites=[site], platforms=records, tree=old_dir)

        php = state.site_php(site)
        gone: list[Absent] = []
        if renamed:
            gone = [Absent(instance.site_record(site.domain), why=f"renamed {new.domain}"),
                    Absent(instance.credentials_file(site.domain),
                           why=f"renamed {new.domain}")]
        return [
            Component(f"{name}-backup", [Archive(archive, make, f"site {site.domain}")],
                      phase=Phase.BACKUP),
            *converge(replace(loaded, state=after)),
            Component(f"{name}-move-{site.domain}", [
                Maintenance(instance=instance, site=site, platform=old_code, php=php, on=True),
                SiteCopy(old_dir, new_dir, f"{instance.root}/backups"),
            ], phase=Phase.DATA),
            Component(f"{name}-update-{new.domain}", [
                SiteDatabase(instance=instance, site=new, platform=code, php=php,
                             rename=Rename(site.domain, new.domain) if renamed else None,
                             update=True, safety=True, profile=(site.profile, new.profile)),
            ], phase=Phase.INSTALL),
            Component(f"{name}-online-{new.domain}", [
                Maintenance(instance=instance, site=new, platform=code, php=php, on=False)],
                phase=Phase.VERIFY),
            health_component(after, [new]),
            # Last, once the site answered through Nginx from its new place: until the
            # reload has reached every worker, one still serving the old root would find
            # no site directory there (Drupal 7 then redirects to install.php: a CI run saw
            # that 302 during a move).
            Component(f"{name}-moved-{site.domain}", [
                TreeAbsent(old_dir, why=f"moved to {new_dir}"), *gone],
                phase=Phase.VERIFY + 1),
        ]

    return build


def site_rename(name: str, domain: str, new_domain: str) -> Builder:
    """`site rename`: a migrate under another name on the site's own platform."""

    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        wanted = check_domain(new_domain, "new name")
        if wanted == check_domain(domain):
            raise UsageError(f"{wanted} is already named so: give another name")
        found = {s.domain: s for s in model.sites(facts.target, instance)}
        site = found.get(check_domain(domain)) or found.get(wanted)
        if site is None:
            raise ConfigError(f'instance {name} has no site "{domain}" (sites: '
                              f'{" ".join(found) or "none"})')
        return site_migrate(name, domain, site.platform, wanted)(config, facts, redactor)

    return build
