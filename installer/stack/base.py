"""The base layer: the operator's config file, BOA's directory skeleton, base packages and
extras, and the cron daemon."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from installer.config import Config, default_text, missing_keys, with_missing_keys
from installer.config.xtras import select
from installer.data import load_profile
from installer.fileops import write_atomic
from installer.plan import Component
from installer.resources.base import Change, Context, Resource
from installer.resources.files import Directory
from installer.resources.system import Packages, Service


@dataclass
class ConfigFile(Resource):
    """The operator's .barracuda.cnf (or another file of a BOA-format profile, such as
    /root/.oN.octopus.cnf): created from the defaults when missing (0600), with `initial`
    values over them; later runs keep every line and only append keys that a newer release
    added."""

    path: Path  # a real path (--config may point outside the target)
    profile: str = "config"
    initial: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"config:{self.path}"

    @property
    def ok_reason(self) -> str:
        return "present with every key, mode 0600"

    def check(self, ctx: Context) -> list[Change]:
        if not self.path.exists():
            return [self.change("create", "missing: written with the defaults")]
        changes = []
        text = self.path.read_text(encoding="utf-8")
        missing = missing_keys(text, str(self.path), self.profile)
        if missing:
            changes.append(self.change("append", f"new keys with defaults: {' '.join(missing)}"))
        mode = self.path.stat().st_mode & 0o777
        if mode != 0o600:
            changes.append(self.change("chmod", f"mode {mode:04o} -> 0600"))
        return changes

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not self.path.exists():
            text = default_text(self.profile, self.initial)
            write_atomic(self.path, text.encode(), mode=0o600)
            return
        text = self.path.read_text(encoding="utf-8")
        new = with_missing_keys(text, str(self.path), self.profile)
        if new != text:
            write_atomic(self.path, new.encode(), mode=0o600)
        os.chmod(self.path, 0o600)

    def paths(self, ctx: Context) -> list[str]:
        root = ctx.target.root.resolve()
        try:
            return ["/" + str(self.path.resolve().relative_to(root))]
        except ValueError:
            return []  # outside the target: the file's own atomic write protects it


def component(config: Config, release: str) -> Component:
    profile = load_profile("base")
    resources: list[Resource] = [ConfigFile(Path(config.path))]
    resources += [
        Directory(d["path"], mode=int(d["mode"], 8)) for d in profile["directories"]
    ]
    extras = select(config["_XTRAS_LIST"], release)
    resources.append(Packages("base", [*profile["packages"], *extras.packages(release)]))
    resources.append(Service(profile["cron_service"], requires=("packages:base",)))
    return Component("base", resources)
