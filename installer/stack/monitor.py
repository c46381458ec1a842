"""The monitor's component: its cron job (/etc/cron.d/barracuda-monitor, every minute) and,
under systemd, a drop-in with Restart=no for each service the monitor restarts itself, so
systemd and the monitor never both restart one service (the monitor's budget would mean
nothing). The state and log directories are the base layer's (/var/lib/barracuda,
/var/log/barracuda)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from installer.data import load_profile
from installer.facts import Facts
from installer.plan import Component
from installer.resources.base import Context, Resource
from installer.resources.cron import CronJob, cron_file
from installer.resources.files import File
from installer.resources.system import Command
from installer.stack.release import Release
from installer.stack.watched import ServiceSpec, specs_for

DROPIN = ("[Service]\n# The barracuda monitor restarts this service, within its restart budget.\n"
          "Restart=no\n")


def restart_is_off(units: list[str]) -> Callable[[Context], bool]:
    """True when systemd has loaded Restart=no for every unit (no daemon-reload pending)."""

    def done(ctx: Context) -> bool:
        result = ctx.runner.run(["systemctl", "show", "--property=Restart", "--value", *units],
                                check=False, timeout=60)
        return result.ok and [v for v in result.stdout.split() if v] == ["no"] * len(units)

    return done


def component(components: list[Component], release: Release, paths: Mapping[str, str],
              facts: Facts) -> Component:
    profile: dict[str, Any] = load_profile("monitor")
    specs: list[ServiceSpec] = specs_for(components, release, profile, paths)
    resources: list[Resource] = [
        cron_file(str(profile["cron_name"]),
                  [CronJob("monitor", "* * * * *", str(profile["cron_command"]))]),
    ]
    if facts.init_system == "systemd":
        units = [s.name for s in specs if s.own_restarts]
        dropins = [File(str(profile["dropin"]).format(unit=unit), content=DROPIN)
                   for unit in units]
        resources += dropins
        if units:
            resources.append(Command(
                "systemd-daemon-reload", ["systemctl", "daemon-reload"],
                done=restart_is_off(units), why="systemd has not loaded Restart=no yet",
                requires=tuple(d.id for d in dropins)))
    return Component("monitor", resources)
