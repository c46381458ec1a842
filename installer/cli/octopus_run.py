"""How every changing `octopus` command runs: a converge of one instance through the same
engine as `barracuda install`, then a line in the instance's own history. Shared by
installer/cli/octopus.py and installer/cli/octopus_backup.py (which import this module,
not each other)."""

from __future__ import annotations

import time

from installer import __version__
from installer.apply import Outcome
from installer.cli.app import App
from installer.cli.entry import exit_on_failures
from installer.config import ignored_warning, load
from installer.converge import run_converge
from installer.octopus import model
from installer.plan import Builder
from installer.target import Target


def record(app: App, instance: str, command: str, summary: str) -> None:
    """The instance's own history line (log/octopus.log), read by `octopus status`."""
    log = Target(app.root).path(f"{model.Instance(instance).root}/log/octopus.log")
    if log.parent.is_dir():
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {command} barracuda "
                         f"{__version__}: {summary}\n")


def converge(app: App, instance: str, command: str, build: Builder,
             channel: str = "stable") -> Outcome | None:
    """Run `build` for `instance`; exit 1 when the summary counts failures. BOA keys in an
    existing instance's config are named in one warning first, as barracuda does. The
    outcome (None when nothing was applied) serves a command made of several runs."""
    if instance in model.instance_names(Target(app.root)):
        cnf = Target(app.root).path(model.Instance(instance).config_file)
        warning = ignored_warning(load(cnf, profile="octopus"), "octopus")
        if warning:
            app.warn(warning)
    outcome = run_converge(app.options, app, f"octopus-{command}-{instance}", build, channel)
    if outcome is not None:
        record(app, instance, command, outcome.summary())
    exit_on_failures(outcome)
    return outcome
