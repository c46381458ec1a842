"""`octopus site export oN DOMAIN --to FILE`: one site as an octopus archive (the format of
`octopus backup`, installer/octopus/archive.py) at a path of the operator's choosing, to be
carried to another server and brought in there by `octopus site import`.

A converge of one resource: the archive is written as a hidden partial file, its dump
verified before packing and the finished archive listed back through zstd, then renamed into
place; a failed or interrupted run removes it again. The source site is only read. An
archive already at FILE that holds this site of this instance is left as it is (a second
run changes nothing); any other file there is refused."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from installer.config import Config
from installer.database.dump import sha256_of
from installer.errors import ConfigError
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.archive import SUFFIX, Archive, read_manifest
from installer.octopus.backup import site_archive
from installer.octopus.components import Phase
from installer.octopus.names import check_domain
from installer.plan import Builder, Component
from installer.resources.base import Change, Context
from installer.runlog import Redactor
from installer.runner import Runner


@dataclass
class ExportedArchive(Archive):
    """The export's archive: written once, and taken away again when the run fails."""

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        path = self.make(ctx, ctx.target.path(self.dest))
        ctx.journal.did(f"wrote {self.dest}", lambda: path.unlink(missing_ok=True))
        ctx.note(f"{self.what} exported to {self.dest} ({path.stat().st_size} bytes, "
                 f"sha256 {sha256_of(path)})")


def holds(runner: Runner, path: Path, instance: str, domain: str) -> bool:
    """Whether `path` is a site archive of `domain` of `instance`."""
    try:
        manifest = read_manifest(runner, path)
    except Exception:  # not a tar, not zstd, no manifest
        return False
    return (manifest.get("kind") == "site" and manifest.get("instance") == instance
            and [s.get("domain") for s in manifest.get("sites", [])] == [domain])


def site_export(name: str, domain: str, to: str) -> Builder:
    """Write site `domain` of instance `name` into the archive `to`."""

    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        wanted = check_domain(domain)
        instance = model.existing(facts.target, name)
        sites = model.sites(facts.target, instance)
        site = next((s for s in sites if wanted in s.names), None)
        if site is None:
            known = " ".join(s.domain for s in sites) or "none"
            raise ConfigError(f'instance {name} has no site "{domain}" (sites: {known})')
        if not to.startswith("/") or not to.endswith(SUFFIX) or to.endswith(f"/{SUFFIX}"):
            raise ConfigError(f"--to {to}: expected an absolute path ending in {SUFFIX}")
        real = facts.target.path(to)
        if not real.parent.is_dir():
            raise ConfigError(f"--to {to}: no such directory {Path(to).parent}")
        if (real.exists() or real.is_symlink()) and not (
                real.is_file() and not real.is_symlink()
                and holds(facts.runner, real, name, site.domain)):
            raise ConfigError(f"--to {to}: exists and is not an archive of {site.domain} of "
                              f"{name}; remove it or choose another path")

        def make(ctx: Context, dest: Path) -> Path:
            return site_archive(ctx.runner, ctx.target, instance, site, dest)

        resource = ExportedArchive(dest=to, make=make, what=f"site {site.domain}")
        return [Component(f"{name}-export-{site.domain}", [resource], phase=Phase.BACKUP)]

    return build
