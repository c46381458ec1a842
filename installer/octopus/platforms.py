"""The platform workflows: `octopus platform add` (a codebase copied from a directory or
cloned with git into the instance) and `platform remove` (archived first; refused while a
site uses it)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from installer.config import Config
from installer.errors import ConfigError, UsageError
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.archive import Archive, archive_name, make_archive
from installer.octopus.components import Phase
from installer.octopus.loader import load_instance
from installer.octopus.model import PlatformRecord, platform_kind
from installer.octopus.names import check_git_ref, check_git_url, check_platform_name
from installer.octopus.sites.common import converge
from installer.plan import Builder, Component
from installer.resources.base import Context
from installer.resources.files import Absent
from installer.resources.trees import TreeAbsent
from installer.runlog import Redactor


def _index_php(tree: Path, what: str) -> None:
    if not (tree / "index.php").is_file():
        raise ConfigError(f"{what}: no index.php front controller at the top of the platform")


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
            _index_php(source, f"--path {path}")
            record = PlatformRecord(platform, str(source), "copy", "", platform_kind(source))
        else:
            if shutil.which("git") is None:
                raise ConfigError("git is not installed: add GIT to _XTRAS_LIST in "
                                  "/root/.barracuda.cnf and run `barracuda install`")
            record = PlatformRecord(platform, git, "git", ref, "auto")
        state = replace(loaded.state, platforms=[*loaded.state.platforms, record])
        return converge(replace(loaded, state=state))

    return build


def platform_remove(name: str, platform: str) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        records = [p for p in loaded.state.platforms if p.name == platform]
        if not records:
            known = " ".join(p.name for p in loaded.state.platforms) or "none"
            raise ConfigError(f'instance {name} has no platform "{platform}" (platforms: '
                              f"{known})")
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


