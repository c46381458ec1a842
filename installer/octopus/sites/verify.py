"""`octopus site verify oN DOMAIN|--all`: the instance converged again (owners and modes of
the site directories, settings.php and the credentials file re-rendered with the kept salt,
the vhost), then each site checked in the last phase: Drupal bootstraps through its own tool
as the instance's user, and the front page answers through Nginx. The run's summary says
what was fixed; a site that does not bootstrap fails the run with one line.
`octopus up-stable` adds the same checks for every installed site."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from installer.config import Config
from installer.drupal.detect import Platform
from installer.drupal.drush import SiteStatus
from installer.errors import ApplyError, BarracudaError, UsageError
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.components import DEFAULT_SERVER_HEADER, InstanceState, Phase
from installer.octopus.loader import Loaded, load_instance
from installer.octopus.model import Instance, SiteRecord
from installer.octopus.sites.common import converge, find_site
from installer.octopus.sites.drupal import status
from installer.plan import Builder, Component
from installer.resources.base import Change, Context, Resource
from installer.runlog import Redactor

if TYPE_CHECKING:
    import requests


@dataclass
class SiteHealth(Resource):
    """A check, not a change: the site bootstraps and its front page answers. Problems are
    reported as a change whose apply fails the run (after the fixes before it were made)."""

    instance: Instance
    site: SiteRecord
    platform: Platform | None  # None: not Drupal, only the front page is asked
    php: str
    redis_wired: bool = False
    found: SiteStatus | None = field(default=None, init=False, repr=False)  # what status said

    @property
    def id(self) -> str:
        return f"site-health:{self.site.domain}"

    @property
    def ok_reason(self) -> str:
        what = "Drupal bootstraps, " if self.platform is not None else ""
        if self.site.disabled:
            return what + "every name answers the site disabled page"
        return what + "the front page answers"

    def problem(self, ctx: Context) -> str | None:
        if self.platform is not None and self.site.installed:
            try:
                found = status(ctx.runner, self.instance, self.platform, self.php, self.site)
            except BarracudaError as exc:
                return f"Drupal does not bootstrap: {exc}"
            self.found = found
            if not found.bootstrap:
                return "Drupal does not bootstrap" + (f": {found.error}" if found.error else "")
        if self.site.disabled:
            return next(filter(None, map(disabled_page, self.site.names)), None)
        return front_page(self.site.domain)

    def check(self, ctx: Context) -> list[Change]:
        if not ctx.target.live:
            return []
        if self.platform is not None and not self.redis_wired:
            ctx.note(f"{self.site.domain}: Redis is not wired (the platform does not carry "
                     "the redis module); the cache stays in the database")
        problem = self.problem(ctx)
        return [self.change("check", problem)] if problem else []

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        raise ApplyError(f"{self.site.domain}: {changes[0].reason}")


def ask(domain: str, path: str) -> int | None:
    """The HTTP status of `path` on the site through Nginx, past the Speed Booster; None
    when nothing (or the default server) answers."""
    codes: list[int] = []

    def keep(response: requests.Response) -> None:
        codes.append(response.status_code)

    answer(domain, f"{path}{'&' if '?' in path else '?'}nocache=1", keep, attempts=1)
    return codes[0] if codes else None


def answer(host: str, path: str, judge: Callable[[requests.Response], str | None],
           attempts: int = 20) -> str | None:
    """What is wrong with `host`'s answer to `path` through Nginx (`judge` says, once it is
    the site's own vhost that answers), retried for a while; None when nothing is."""
    import requests  # deferred: only these checks need it (see installer/stack/nginx.py)

    problem: str | None = "no answer"
    for _ in range(attempts):
        try:
            response = requests.get(f"http://127.0.0.1{path}", timeout=30,
                                    headers={"Host": host}, allow_redirects=False)
        except requests.RequestException as exc:
            problem = str(exc)
        else:
            problem = ("answered by the default server"
                       if response.headers.get(DEFAULT_SERVER_HEADER) == "default"
                       else judge(response))
            if problem is None:
                return None
        time.sleep(0.5)
    return problem


def front_page(domain: str) -> str | None:
    """The front page past the Speed Booster: answered with no server error."""
    problem = answer(domain, "/?nocache=1", lambda r: f"answers HTTP {r.status_code}"
                     if r.status_code >= 500 else None)
    return f"front page {problem}" if problem else None


def disabled_page(name: str) -> str | None:
    """`name` answers the site disabled page: 503 with Retry-After."""
    problem = answer(name, "/", lambda r: None if r.status_code == 503
                     and "Retry-After" in r.headers else f"answers HTTP {r.status_code}, "
                     "not the site disabled page")
    return f"{name} {problem}" if problem else None


def health_component(state: InstanceState, sites: list[SiteRecord]) -> Component:
    i = state.instance
    checks: list[Resource] = []
    for site in sites:
        platform = state.codebase(site)
        wired = (platform is not None and platform.redis_module is not None
                 and state.redis is not None)
        checks.append(SiteHealth(instance=i, site=site, platform=platform,
                                 php=state.site_php(site), redis_wired=wired))
    return Component(f"{i.name}-verify", checks, phase=Phase.VERIFY)


def checked_sites(loaded: Loaded, domain: str, every: bool) -> list[SiteRecord]:
    if every == bool(domain):
        raise UsageError("give a site's domain or --all, not both")
    return list(loaded.state.sites) if every else [find_site(loaded, domain)]


def site_verify(name: str, domain: str, every: bool) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        sites = checked_sites(loaded, domain, every)
        return [*converge(loaded), health_component(loaded.state, sites)]

    return build
