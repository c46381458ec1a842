"""`octopus backup`: one site, or every site of an instance, as one verified archive in the
instance's backups/ (installer/octopus/archive.py)."""

from __future__ import annotations

from pathlib import Path

from installer.errors import ConfigError
from installer.octopus import model
from installer.octopus.archive import archive_name, make_archive
from installer.runner import Runner
from installer.target import Target


def backup_instance(runner: Runner, target: Target, name: str,
                    domain: str | None = None) -> Path:
    """Write <instance>/backups/<label>-<timestamp>.tar.zst: one site (its directory, its
    database, its platform and site records) or, without `domain`, every site: the
    platforms tree (code and site directories), every database, every record and the
    instance's .octopus.cnf."""
    instance = model.existing(target, name)
    sites = model.sites(target, instance)
    platforms = model.platforms(target, instance)
    if domain is not None:
        chosen = [s for s in sites if domain.lower() in s.names]
        if not chosen:
            known = " ".join(s.domain for s in sites) or "none"
            raise ConfigError(f'instance {name} has no site "{domain}" (sites: {known})')
        site = chosen[0]
        dest = target.path(f"{instance.root}/backups/{archive_name(site.domain)}")
        return site_archive(runner, target, instance, site, dest)
    dest = target.path(f"{instance.root}/backups/{archive_name(name)}")
    return make_archive(runner, target, dest, kind="instance", instance=instance, sites=sites,
                        platforms=platforms, tree=f"{instance.root}/platforms",
                        extra_files=[instance.config_file])


def site_archive(runner: Runner, target: Target, instance: model.Instance,
                 site: model.SiteRecord, dest: Path) -> Path:
    """The archive of one site (`octopus backup oN DOMAIN`, `octopus site export`): its
    directory, its database, its platform and site records."""
    platforms = model.platforms(target, instance)
    return make_archive(runner, target, dest, kind="site", instance=instance, sites=[site],
                        platforms=[p for p in platforms if p.name == site.platform],
                        tree=instance.site_dir(site), extra_files=[instance.config_file])
