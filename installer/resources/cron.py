"""Cron jobs as whole files in /etc/cron.d, one named line per job.

A file is a managed File resource like any other (header, hash, checkpoint, diff), so an
operator's edit of a job is reported and kept, and removing a job means rendering the file
without it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from installer.errors import DataError
from installer.resources.files import File

CRON_DIR = "/etc/cron.d"
CRON_ENV = "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
# cron(8) ignores /etc/cron.d files whose names hold anything but letters, digits, - and _.
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_FIELD = re.compile(r"^[0-9*/,-]+$")
_SPECIAL = {"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
            "@hourly"}


@dataclass(frozen=True)
class CronJob:
    name: str  # shown as "# barracuda: NAME" above the line
    schedule: str  # five fields, or one of cron's @ keywords
    command: str
    user: str = "root"

    def line(self) -> str:
        fields = self.schedule.split()
        if self.schedule not in _SPECIAL and not (
                len(fields) == 5 and all(_FIELD.match(f) for f in fields)):
            raise DataError(f"cron job {self.name}: bad schedule {self.schedule!r}")
        # cron turns an unescaped % into a newline.
        command = self.command.replace("%", "\\%")
        return f"# barracuda: {self.name}\n{self.schedule} {self.user} {command}\n"


def cron_file(name: str, jobs: Sequence[CronJob], **options: object) -> File:
    """The File resource for /etc/cron.d/NAME holding `jobs` (mode 0644, root)."""
    if not _NAME.match(name):
        raise DataError(f"bad cron file name {name!r}: cron ignores names with dots")
    content = CRON_ENV + "".join(job.line() for job in jobs)
    return File(f"{CRON_DIR}/{name}", content=content, **options)  # type: ignore[arg-type]
