"""`octopus site upgrade oN DOMAIN --platform NEW`: Aegir's eight steps of a safe upgrade
as one command, each step a converge run of its own (planned, logged, undone on failure):

    1. verify the new platform (its tree read again: core, profiles, PHP)
    2. clone the live site to upgrade-test.DOMAIN on its own platform
    3. migrate the clone to the new platform (its database updates run)
    4. check the clone: Drupal bootstraps with no pending update, the front page and every
       --check-path page answer below 400, no PHP error in its log since the clone
    5. remove the clone (unless --keep-clone; a failed clone is kept with it too)
    6. migrate the live site to the new platform

A failure in steps 1-4 stops before step 6: the live site was only read. The steps are
planned here (pure); the CLI runs them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from installer.config import Config
from installer.database import sql
from installer.errors import BarracudaError, UsageError
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.components import Phase
from installer.octopus.loader import load_instance
from installer.octopus.names import check_domain
from installer.octopus.sites import remove
from installer.octopus.sites.clone import site_clone
from installer.octopus.sites.common import converge, find_site
from installer.octopus.sites.migrate import site_migrate
from installer.octopus.sites.verify import SiteHealth, ask
from installer.plan import Builder, Component
from installer.resources.base import Context
from installer.runlog import Redactor

TEST_LABEL = "upgrade-test"
_PATH = re.compile(r"/[\x21-\x7e]*")


def trial_domain(domain: str) -> str:
    """The name of the live site's test clone."""
    return check_domain(f"{TEST_LABEL}.{domain}", "test clone")


def check_paths(paths: Sequence[str]) -> tuple[str, ...]:
    """--check-path values: absolute URL paths, printable ASCII, no spaces."""
    for path in paths:
        if not _PATH.fullmatch(path) or len(path) > 2000:
            raise UsageError(f"--check-path {path!r}: expected a path such as /node/1")
    return tuple(paths)


@dataclass(frozen=True)
class Step:
    number: int
    what: str  # one line for the plan and the progress
    command: str  # the run's name in the logs (site-clone, site-migrate, ...)
    build: Builder
    live: bool = False  # it changes the live site


def upgrade_steps(name: str, domain: str, platform: str, verify: Builder,
                  paths: Sequence[str] = (), keep_clone: bool = False,
                  since: int = 0) -> list[Step]:
    """The runs of `site upgrade`, in order (see the module); `verify` is the platform's
    own verify (installer/octopus/platforms.py, which this package may not import)."""
    live = check_domain(domain)
    test = trial_domain(live)
    checked = check_paths(paths)
    steps = [
        Step(1, f"verify platform {platform}", "platform-verify", verify),
        Step(2, f"clone {live} to {test}", "site-clone", site_clone(name, live, test)),
        Step(3, f"migrate {test} to platform {platform}", "site-migrate",
             site_migrate(name, test, platform)),
        Step(4, f"check {test}: bootstrap, no pending update, front page"
                + (f", {' '.join(checked)}" if checked else "") + ", no PHP error logged",
             "site-check", site_check(name, test, checked, since)),
    ]
    if not keep_clone:
        steps.append(Step(5, f"remove {test} (archived first)", "site-remove",
                          remove.site_remove(name, test)))
    steps.append(Step(6, f"migrate {live} to platform {platform}", "site-migrate",
                      site_migrate(name, live, platform), live=True))
    return steps


@dataclass
class SiteChecks(SiteHealth):
    """SiteHealth, and: no database update pending (Drupal 7), each of `pages` answers
    below 400, no PHP error in the site's log (dblog's watchdog table) since `since`."""

    pages: tuple[str, ...] = ()
    since: int = 0

    @property
    def id(self) -> str:
        return f"site-checks:{self.site.domain}"

    @property
    def ok_reason(self) -> str:
        return "bootstraps, answers, logs no PHP error"

    def problem(self, ctx: Context) -> str | None:
        problem = super().problem(ctx)
        if problem:
            return problem
        if self.platform is not None and self.found is not None and \
                self.found.pending_updates:
            return f"{self.found.pending_updates} database updates pending"
        for path in self.pages:
            code = ask(self.site.domain, path)
            if code is None or code >= 400:
                return f"{path} answers " + (f"HTTP {code}" if code else "nothing")
        return php_errors(ctx, self.site.db_name, self.since)


def php_errors(ctx: Context, database: str, since: int) -> str | None:
    """The PHP errors (severity error or worse) Drupal logged since `since`, if any."""
    try:
        if sql.scalar(ctx.runner, "SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                                  f"TABLE_SCHEMA = {sql.quote_text(database)} AND "
                                  "TABLE_NAME = 'watchdog'") != "1":
            return None
        count = sql.scalar(ctx.runner, f"SELECT COUNT(*) FROM {sql.quote_name(database)}."
                                       f"watchdog WHERE type = 'php' AND severity <= 3 AND "
                                       f"timestamp >= {int(since)}")
    except BarracudaError as exc:
        return f"the site's log cannot be read: {exc}"
    return f"{count} PHP errors logged (see the site's recent log messages)" \
        if count not in ("", "0") else None


def site_check(name: str, domain: str, paths: Sequence[str] = (), since: int = 0) -> Builder:
    """The instance converged, then the checks of step 4 on `domain`."""

    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        site = find_site(loaded, domain)
        state = loaded.state
        check = SiteChecks(instance=instance, site=site, platform=state.codebase(site),
                           php=state.site_php(site), redis_wired=True,
                           pages=check_paths(paths), since=since)
        return [*converge(loaded), Component(f"{name}-check-{site.domain}", [check],
                                             phase=Phase.VERIFY)]

    return build
