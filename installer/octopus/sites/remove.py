"""`octopus site remove`: a verified archive of the site first, then its vhost, database,
account, directory and record go."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from installer.config import Config
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.archive import Archive, archive_name, make_archive
from installer.octopus.components import Phase
from installer.octopus.loader import load_instance
from installer.octopus.sites.common import converge, find_site
from installer.plan import Builder, Component
from installer.resources.base import Context
from installer.resources.database import DatabasesAbsent
from installer.resources.files import Absent
from installer.resources.trees import TreeAbsent
from installer.runlog import Redactor


def site_remove(name: str, domain: str) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        site = find_site(loaded, domain)
        platforms = [p for p in loaded.state.platforms if p.name == site.platform]
        dest = f"{instance.root}/backups/{archive_name(site.domain)}"

        def make(ctx: Context, out: Path) -> Path:
            return make_archive(ctx.runner, ctx.target, out, kind="site", instance=instance,
                                sites=[site], platforms=platforms, tree=instance.site_dir(site))

        state = replace(loaded.state, sites=[s for s in loaded.state.sites if s is not site])
        return [
            Component(f"{name}-backup", [Archive(dest, make, f"site {site.domain}")],
                      phase=Phase.BACKUP),
            *converge(replace(loaded, state=state)),
            Component(f"{name}-site-removal", [
                DatabasesAbsent(f"{name}-{site.domain}", (site.db_name,), (site.db_user,),
                                why="the site was removed (backed up first)"),
                TreeAbsent(instance.site_dir(site), why="the site was removed (backed up)"),
                Absent(instance.site_record(site.domain), why="the site was removed"),
            ], phase=Phase.CLEANUP),
        ]

    return build


