"""Scheduled upgrades, as BOA's `_AUTO_UP_*` keys describe them: a weekly `up-<ver> system`
(operating-system packages) on _AUTO_UP_WEEKLY, and a full `up-<ver>` once a year on
_AUTO_UP_MONTH/_AUTO_UP_DAY, both in one managed cron file. With the keys empty the file is
absent."""

from __future__ import annotations

from installer.config import Config
from installer.data import load_profile
from installer.plan import Component
from installer.resources.cron import CRON_DIR, CronJob, cron_file
from installer.resources.files import Absent

# The longest each month gets (29 for February: the job then runs in leap years only).
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def jobs(config: Config) -> list[CronJob]:
    """The cron jobs the _AUTO_* keys ask for (none when they are empty). The schema already
    demands all four or none and checks each range; an impossible date is a config error."""
    weekly, month, day, channel = (config["_AUTO_UP_WEEKLY"], config["_AUTO_UP_MONTH"],
                                   config["_AUTO_UP_DAY"], config["_AUTO_VER"])
    if not channel:
        return []
    if day > MONTH_DAYS[month - 1]:
        raise config.error("_AUTO_UP_DAY", f'bad value "{day}": expected a day that month '
                                           f"{month} has (1 to {MONTH_DAYS[month - 1]})")
    when = load_profile("upgrade")["schedule"]
    at = f"{int(when['minute'])} {int(when['hour'])}"
    quiet = "--yes --quiet"
    return [
        CronJob(f"up-{channel}-system-weekly", f"{at} * * {weekly}",
                f"barracuda up-{channel} system {quiet}"),
        CronJob(f"up-{channel}-yearly", f"{at} {day} {month} *",
                f"barracuda up-{channel} {quiet}"),
    ]


def component(config: Config) -> Component:
    name = str(load_profile("upgrade")["schedule"]["cron_file"])
    wanted = jobs(config)
    if wanted:
        return Component("schedule", [cron_file(name, wanted)])
    return Component("schedule", [Absent(f"{CRON_DIR}/{name}",
                                         why="no scheduled upgrades (_AUTO_VER is empty)")])
