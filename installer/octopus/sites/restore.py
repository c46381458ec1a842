"""`octopus restore`: a site brought back from an archive (`octopus backup`'s, or the one a
removal made), into its own instance or another one.

Archives are the octopus archives (installer/octopus/archive.py): manifest.json, records/,
db/<name>.sql.zst and tree/. A restore reads the manifest in the builder (so a wrong archive
or a taken domain changes nothing), then converges the target instance with the site added,
two resources placing the data in their phases (installer/octopus/components.py Phase): the
platform's code from the archive when the target lacks the platform (CODE: before the
platforms are converged), then the site's directory and its database (DATA: after the
databases and platforms, before the site directories and the vhost). Both register their
undo: a failed run takes the placed code, files and database away again."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from installer.config import Config
from installer.data import load_profile
from installer.database import sql
from installer.database.dump import DumpRecord, restore_database, verify_dump
from installer.errors import ApplyError, ConfigError
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.archive import read_manifest
from installer.octopus.components import Phase
from installer.octopus.loader import Loaded, load_instance
from installer.octopus.model import Instance, PlatformRecord, SiteRecord
from installer.octopus.names import check_domain, db_identifier
from installer.octopus.sites.common import (
    DB_NAME_MAX,
    DB_USER_MAX,
    check_database_free,
    converge,
)
from installer.plan import Builder, Component
from installer.resources.base import Change, Context, Resource
from installer.runlog import Redactor
from installer.runner import Runner
from installer.stack.secrets import generate

# --------------------------------------------------------------------------- restore


@dataclass(frozen=True)
class Source:
    """Where the pieces of one site are inside an archive."""

    archive: Path
    manifest: dict[str, Any]
    site: SiteRecord  # as it was recorded (with its password when the record was packed)
    platform: PlatformRecord | None
    site_member: str  # "tree" or "tree/<path>": the site's directory
    platform_member: str | None  # the platform's code, when the archive holds it
    dump: DumpRecord | None


def _member(tree: str, path: str) -> str | None:
    """The archive member holding `path`, given that tree/ holds `tree`."""
    try:
        rel = PurePosixPath(path).relative_to(PurePosixPath(tree))
    except ValueError:
        return None
    return "tree" if str(rel) == "." else f"tree/{rel}"


def _members(runner: Runner, archive: Path) -> set[str]:
    listed = runner.run(["tar", "--zstd", "-tf", str(archive)], timeout=3600).stdout
    return {line.rstrip("/") for line in listed.splitlines() if line.strip()}


def _record_from(runner: Runner, archive: Path, domain: str) -> dict[str, Any] | None:
    result = runner.run(["tar", "--zstd", "-xOf", str(archive), f"records/{domain}.yml"],
                        check=False, timeout=600)
    if not result.ok:
        return None
    data = yaml.safe_load(result.stdout)
    return data if isinstance(data, dict) else None


def open_source(runner: Runner, archive: Path, domain: str | None) -> Source:
    """The site `domain` of `archive` (None: its only site), every member listed through
    zstd first (which checks the frames' checksums)."""
    if not archive.is_file():
        raise ConfigError(f"{archive}: no such archive")
    try:
        manifest = read_manifest(runner, archive)
    except Exception as exc:  # not a tar, not zstd, no manifest: one line, not a trace
        raise ConfigError(f"{archive}: not an octopus archive, or damaged or cut short "
                          f"({str(exc)[:200]})") from None
    held = " ".join(s["domain"] for s in manifest.get("sites", [])) or "none"
    wanted = [s for s in manifest.get("sites", [])
              if domain is None or domain in (s["domain"], *s["aliases"])]
    if domain is None and len(wanted) != 1:
        raise ConfigError(f"{archive.name} holds {len(wanted)} sites ({held}), not one: "
                          "bring one in with `octopus restore oN DOMAIN ARCHIVE`")
    if not wanted:
        raise ConfigError(f"{archive.name} holds no site {domain} (sites: {held})")
    data = dict(wanted[0])
    recorded = _record_from(runner, archive, data["domain"]) or {}
    data["db_password"] = recorded.get("db_password", "")
    data["aliases"] = tuple(data.get("aliases") or ())
    site = SiteRecord(**data)
    platform = next((PlatformRecord(**p) for p in manifest.get("platforms", [])
                     if p["name"] == site.platform), None)
    old = Instance(str(manifest["instance"]))
    tree = str(manifest["tree"])
    try:
        members = _members(runner, archive)
    except Exception as exc:  # a cut or damaged archive: zstd or tar stops reading it
        raise ConfigError(f"{archive.name} is damaged or cut short: nothing was taken from "
                          f"it ({str(exc).splitlines()[0][:200]})") from None
    site_member = _member(tree, old.site_dir(site))
    if site_member is None or site_member not in members:
        raise ConfigError(f"{archive.name} does not hold the files of {site.domain}")
    platform_member = _member(tree, old.platform_dir(site.platform))
    if platform_member is not None and (platform_member not in members
                                        or platform_member == site_member):
        platform_member = None
    dumps = manifest.get("databases", {})
    dump = DumpRecord.from_dict(dumps[site.db_name]) if site.db_name in dumps else None
    return Source(archive, manifest, site, platform, site_member, platform_member, dump)


@contextlib.contextmanager
def _extracted(ctx: Context, source: Source, where: Path, members: list[str]) -> Iterator[Path]:
    stage = Path(tempfile.mkdtemp(prefix=".restore-", dir=where))
    try:
        os.chmod(stage, 0o700)
        ctx.runner.run(["tar", "--zstd", "-xf", str(source.archive), "-C", str(stage),
                        "--no-same-owner", *members], timeout=6 * 3600)
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _chown_tree(ctx: Context, top: Path, owner: str, group: str) -> None:
    account = ctx.facts.user(owner)
    gid = ctx.facts.group_id(group)
    if account is None or gid is None:
        raise ApplyError(f"cannot own {top}: no user {owner} or group {group}")
    os.chown(top, account.uid, gid, follow_symlinks=False)
    for base, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            os.chown(os.path.join(base, name), account.uid, gid, follow_symlinks=False)


@dataclass
class PlacedPlatform(Resource):
    """The platform's code taken from the archive, for a target instance without it (its
    recorded source may be long gone); the other sites' directories are left out."""

    source: Source
    instance: Instance
    path: str

    @property
    def id(self) -> str:
        return f"restored-platform:{self.path}"

    @property
    def ok_reason(self) -> str:
        return "in place"

    def check(self, ctx: Context) -> list[Change]:
        if ctx.facts.file(self.path).exists:
            return []
        return [self.change("create", f"placed from {self.source.archive.name}",
                            executed=ctx.target.live)]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        member = self.source.platform_member
        assert member is not None
        real = ctx.target.path(self.path)
        real.parent.mkdir(parents=True, exist_ok=True)
        with _extracted(ctx, self.source, real.parent, [member]) as stage:
            code = stage / member
            others = [s["domain"] for s in self.source.manifest.get("sites", [])
                      if s["platform"] == self.source.site.platform]
            for domain in others:
                shutil.rmtree(code / "sites" / domain, ignore_errors=True)
            _chown_tree(ctx, code, self.instance.name, self.instance.group)
            os.chmod(code, 0o750)
            os.replace(code, real)
        ctx.journal.did(f"placed {self.path}", lambda: shutil.rmtree(real, ignore_errors=True))


@dataclass
class RestoredSite(Resource):
    """The site's directory and database, from the archive (once: a site directory that
    exists is never overwritten)."""

    source: Source
    instance: Instance
    site: SiteRecord  # as it will be in the target instance

    @property
    def id(self) -> str:
        return f"restored-site:{self.site.domain}"

    @property
    def ok_reason(self) -> str:
        return "files and database in place"

    def check(self, ctx: Context) -> list[Change]:
        if ctx.facts.file(self.instance.site_dir(self.site)).exists:
            return []
        what = "files" + (f" and database {self.site.db_name}" if self.source.dump else "")
        return [self.change("restore", f"{what} from {self.source.archive.name}",
                            executed=ctx.target.live)]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        source, site = self.source, self.site
        real = ctx.target.path(self.instance.site_dir(site))
        real.parent.mkdir(parents=True, exist_ok=True)
        members = [source.site_member]
        if source.dump:
            members.append(f"db/{source.dump.file}")
        runner = ctx.runner
        with _extracted(ctx, source, real.parent, members) as stage:
            if source.dump:
                dump = stage / "db" / source.dump.file
                problem = verify_dump(runner, dump, source.dump)
                if problem:
                    raise ApplyError(f"{source.archive.name}: {problem}; nothing restored")
                existed = sql.database_exists(runner, site.db_name)
                restore_database(runner, dump, site.db_name)
                if not existed:
                    ctx.journal.did(f"restored database {site.db_name}", lambda: sql.execute(
                        runner, [sql.drop_database(site.db_name)]))
            files = stage / source.site_member
            _chown_tree(ctx, files, self.instance.name, self.instance.group)
            web = self.instance.web_user
            for spec in load_profile("octopus")["site_directories"]:
                inner = files / str(spec["path"])
                if inner.is_dir():
                    _chown_tree(ctx, inner, web, self.instance.group)
            os.replace(files, real)
        ctx.journal.did(f"restored {self.instance.site_dir(site)}",
                        lambda: shutil.rmtree(real, ignore_errors=True))


def restore_site(name: str, domain: str, archive: str) -> Builder:
    """Bring the site `domain` of `archive` back into instance `name`."""

    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        wanted = check_domain(domain)
        instance = model.existing(facts.target, name)
        source = open_source(facts.runner, Path(archive).resolve(), wanted)
        old = source.site
        for host in old.names:
            owner = model.domain_owner(facts.target, host)
            if owner:
                raise ConfigError(f"{host} is served by site {owner[1]} of instance "
                                  f"{owner[0]}: remove that site first")
        loaded = load_instance(config, facts, redactor, instance)
        state = loaded.state
        same = old.db_password and str(source.manifest["instance"]) == name
        if same:
            site = old
            redactor.add(site.db_password)
            if any(s.db_name == site.db_name for s in state.sites):
                raise ConfigError(f"database {site.db_name} is taken in instance {name}")
        else:
            site = new_credentials(facts, loaded, old, redactor)
        platforms = list(state.platforms)
        placed: list[Resource] = []
        if not any(p.name == old.platform for p in platforms):
            if source.platform is None:
                raise ConfigError(f"instance {name} has no platform {old.platform} and the "
                                  "archive does not describe it: add it with `octopus "
                                  "platform add` first")
            platforms.append(source.platform)
            if source.platform_member:
                placed.append(PlacedPlatform(source, instance,
                                             instance.platform_dir(old.platform)))
            elif source.platform.via == "copy" and not Path(source.platform.source).is_dir():
                raise ConfigError(
                    f"instance {name} has no platform {old.platform}, the archive holds only "
                    f"the site, and the platform's source {source.platform.source} is gone: "
                    "add the platform with `octopus platform add` first")
        return brought_in(loaded, source, site, platforms, placed)

    return build


def new_credentials(facts: Facts, loaded: Loaded, site: SiteRecord,
                    redactor: Redactor) -> SiteRecord:
    """`site` with a database, account and password of its own in `loaded`'s instance,
    none of them used on this server yet."""
    name = loaded.instance.name
    password = generate(int(loaded.state.config["_STRONG_PASSWORDS"]))
    redactor.add(password)
    fresh = replace(site, db_name=db_identifier(name, site.domain, DB_NAME_MAX),
                    db_user=db_identifier(name, site.domain, DB_USER_MAX), db_password=password)
    check_database_free(facts, fresh.db_name, fresh.db_user)
    return fresh


def brought_in(loaded: Loaded, source: Source, site: SiteRecord,
               platforms: list[PlatformRecord], placed: list[Resource]) -> list[Component]:
    """The instance converged with `site` added, its files and database placed from
    `source` (and `placed`, the platform's code, before the platforms)."""
    name = loaded.instance.name
    state = replace(loaded.state, sites=[*loaded.state.sites, site], platforms=platforms)
    out = converge(replace(loaded, state=state))
    if placed:
        out.append(Component(f"{name}-restore-platform", placed, phase=Phase.CODE))
    out.append(Component(f"{name}-restore-{site.domain}",
                         [RestoredSite(source, loaded.instance, site)], phase=Phase.DATA))
    return out
