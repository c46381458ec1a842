"""The backup agent's place in the stack: the 0700 backup directory and the nightly cron
job at _DB_BACKUP_TIME (zstd and the MariaDB client come with the base and stack packages)."""

from __future__ import annotations

from pathlib import PurePosixPath

from installer.config import Config
from installer.data import load_profile
from installer.plan import Component
from installer.resources.base import Resource
from installer.resources.cron import CronJob, cron_file
from installer.resources.files import Directory


def schedule(config: Config) -> str:
    """The cron schedule of _DB_BACKUP_TIME ("01:15" -> "15 1 * * *")."""
    hour, minute = str(config["_DB_BACKUP_TIME"]).split(":")
    return f"{int(minute)} {int(hour)} * * *"


def component(config: Config) -> Component:
    profile = load_profile("backup")
    directory = PurePosixPath(str(profile["dir"]))
    resources: list[Resource] = [
        Directory(str(directory.parent), mode=0o700),
        Directory(str(directory), mode=0o700, requires=(f"dir:{directory.parent}",)),
        cron_file(str(profile["cron_name"]), [
            CronJob("database-backup", schedule(config), str(profile["command"])),
        ], requires=(f"dir:{directory}",)),
    ]
    return Component("backup", resources)
