"""The platform workflows: `octopus platform add` (a codebase copied from a directory or
cloned with git into the instance), `platform verify` (what the placed tree is now, kept in
its record) and `platform remove` (archived first; refused while a site uses it).

A platform knows what it is: installer.drupal.detect reads the core and its version, the
docroot (`web/`, `docroot/` or the top), the install profiles, a shipped Drush and the
oldest PHP the codebase runs on; the record keeps it and the vhosts serve the docroot. A
codebase that needs a newer PHP than the instance runs is refused in one line."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from installer.config import Config
from installer.drupal import detect
from installer.errors import ConfigError, UsageError
from installer.facts import Facts
from installer.octopus import codebase, model
from installer.octopus.archive import Archive, archive_name, make_archive
from installer.octopus.components import Phase
from installer.octopus.loader import Loaded, load_instance
from installer.octopus.model import PlatformRecord
from installer.octopus.names import check_git_ref, check_git_url, check_platform_name
from installer.octopus.sites.common import converge
from installer.plan import Builder, Component
from installer.resources.base import Context
from installer.resources.files import Absent
from installer.resources.trees import TreeAbsent
from installer.runlog import Redactor


def _examine(loaded: Loaded, tree: Path, name: str, what: str) -> detect.Platform:
    """What `tree` is, at the path platform `name` has in the instance; refused when its
    docroot has no index.php or it needs a newer PHP than the instance's."""
    try:
        found = detect.detect(tree)
    except detect.PlatformError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    if not (found.docroot / "index.php").is_file():
        where = found.docroot_rel or "the top of the platform"
        raise ConfigError(f"{what}: no index.php front controller in {where}")
    detect.require_php(found, loaded.state.php, instance=loaded.instance.name)
    return codebase.rebase(found, loaded.instance.platform_dir(name))


def _record(name: str, source: str, via: str, ref: str,
            found: detect.Platform) -> PlatformRecord:
    return PlatformRecord(name, source, via, ref, codebase.kind_of(found), found.as_record())


def platform_add(name: str, platform: str, path: str, git: str, ref: str) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        check_platform_name(platform)
        instance = model.existing(facts.target, name)
        if bool(path) == bool(git):
            raise UsageError("give the platform's code with exactly one of --path DIR and "
                             "--git URL")
        if ref and not git:
            raise UsageError("--ref goes with --git")
        if git:
            check_git_url(git)
        if ref:
            check_git_ref(ref)
        loaded = load_instance(config, facts, redactor, instance)
        if any(p.name == platform for p in loaded.state.platforms):
            raise ConfigError(f"instance {name} already has a platform {platform}")
        if path:
            source = Path(path).resolve()
            if not source.is_dir():
                raise ConfigError(f"--path {path}: not a directory")
            found = _examine(loaded, source, platform, f"--path {path}")
            record = _record(platform, str(source), "copy", "", found)
            codebases = {**loaded.state.codebases, platform: found}
            loaded = replace(loaded, state=replace(loaded.state, codebases=codebases))
        else:
            if shutil.which("git") is None:
                raise ConfigError("git is not installed: add GIT to _XTRAS_LIST in "
                                  "/root/.barracuda.cnf and run `barracuda install`")
            record = PlatformRecord(platform, git, "git", ref, "auto")
        state = replace(loaded.state, platforms=[*loaded.state.platforms, record])
        return converge(replace(loaded, state=state))

    return build


def platform_verify(name: str, platform: str) -> Builder:
    """Read the placed tree again (after a code update), keep what it is in the record, and
    converge the instance (vhost roots and site settings follow a moved docroot)."""

    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        record = _platform(loaded, platform)
        tree = facts.target.path(instance.platform_dir(platform))
        if not tree.is_dir():
            raise ConfigError(f"platform {platform} has no tree at "
                              f"{instance.platform_dir(platform)}: run `octopus up-stable "
                              f"{name}` to place it")
        found = _examine(loaded, tree, platform, f"platform {platform}")
        new = _record(platform, record.source, record.via, record.ref, found)
        if record.kind == "auto":
            new = replace(new, kind="auto")
        state = loaded.state
        sites = [replace(s, docroot=found.docroot_rel) if s.platform == platform else s
                 for s in state.sites]
        state = replace(state, platforms=[new if p is record else p for p in state.platforms],
                        codebases={**state.codebases, platform: found}, sites=sites)
        return converge(replace(loaded, state=state))

    return build


def _platform(loaded: Loaded, platform: str) -> PlatformRecord:
    for record in loaded.state.platforms:
        if record.name == platform:
            return record
    known = " ".join(p.name for p in loaded.state.platforms) or "none"
    raise ConfigError(f'instance {loaded.instance.name} has no platform "{platform}" '
                      f"(platforms: {known})")


def platform_remove(name: str, platform: str) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        records = [_platform(loaded, platform)]
        users = [s.domain for s in loaded.state.sites if s.platform == platform]
        if users:
            raise ConfigError(f"platform {platform} is used by {' '.join(users)}: remove "
                              "those sites first")
        state = replace(loaded.state, platforms=[p for p in loaded.state.platforms
                                                 if p.name != platform])
        tree = instance.platform_dir(platform)
        dest = f"{instance.root}/backups/{archive_name(f'platform-{platform}')}"

        def make(ctx: Context, out: Path) -> Path:
            return make_archive(ctx.runner, ctx.target, out, kind="platform", instance=instance,
                                sites=[], platforms=records, tree=tree)

        return [
            Component(f"{name}-backup", [Archive(dest, make, f"platform {platform}")],
                      phase=Phase.BACKUP),
            *converge(replace(loaded, state=state)),
            Component(f"{name}-platform-removal", [
                TreeAbsent(tree, why="the platform was removed (its code is in the backup)"),
                Absent(instance.platform_record(platform), why="the platform was removed"),
            ], phase=Phase.CLEANUP),
        ]

    return build


