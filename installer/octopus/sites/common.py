"""What the site workflows share: the run's components for an instance with its sites as
they will be, the checks of a new site's names and database, and the site settings given on
the command line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from installer.data import load_profile
from installer.database.sql import database_exists, user_exists
from installer.errors import ConfigError, UsageError
from installer.facts import Facts
from installer.octopus import certificate, model
from installer.octopus.components import Phase, build_instance
from installer.octopus.loader import Loaded, secret_name
from installer.octopus.model import SiteRecord
from installer.plan import Component

DB_NAME_MAX = 64
DB_USER_MAX = 32


def converge(loaded: Loaded) -> list[Component]:
    """The instance's components for `loaded` (its records as they will be after the run)."""
    return build_instance(loaded.state, loaded.stack, loaded.known_vhosts)


def secret_component(loaded: Loaded) -> Component:
    name = secret_name(loaded.instance)
    return Component(f"{loaded.instance.name}-secret",
                     list(loaded.secrets.resources(name, loaded.state.db_password)),
                     phase=Phase.SECRETS)


def find_site(loaded: Loaded, domain: str) -> SiteRecord:
    """The instance's site `domain`; ConfigError naming the sites it has."""
    for site in loaded.state.sites:
        if site.domain == domain.lower():
            return site
    known = " ".join(s.domain for s in loaded.state.sites) or "none"
    raise ConfigError(f'instance {loaded.instance.name} has no site "{domain}" (sites: {known})')


def check_free(facts: Facts, names: Sequence[str]) -> None:
    """No other site of any instance answers one of `names`."""
    seen: set[str] = set()
    for host in names:
        if host in seen:
            raise ConfigError(f"{host} is given twice")
        seen.add(host)
        owner = model.domain_owner(facts.target, host)
        if owner:
            raise ConfigError(f"duplicate domain {host}: instance {owner[0]} already serves it "
                              f"(site {owner[1]})")


def check_database_free(facts: Facts, db_name: str, db_user: str) -> None:
    """No site of any instance, and nothing on the server, uses the database or account a
    new site would get: two instances' names can map to one identifier (o1-x's q.test and
    o1's x.q.test are both o1_x_q_test), and taking it over would hand one tenant the
    other's data."""
    for name in model.instance_names(facts.target):
        for site in model.sites(facts.target, model.Instance(name)):
            if db_name in (site.db_name, site.db_user) or db_user in (site.db_name,
                                                                      site.db_user):
                raise ConfigError(f"database {db_name} would collide with site {site.domain} "
                                  f"of instance {name}; choose another domain")
    if facts.target.live and (database_exists(facts.runner, db_name)
                              or user_exists(facts.runner, db_user)):
        raise ConfigError(f"database {db_name} or account {db_user} already exists on this "
                          "server and belongs to no site: remove it or choose another domain")


@dataclass(frozen=True)
class SiteSettings:
    """A site's Nginx settings given on the command line; None = keep (or default)."""

    kind: str | None = None
    hsts: bool | None = None
    cache_ttl: int | None = None
    certificate: str | None = None
    certificate_key: str | None = None
    https: str | None = None  # letsencrypt, wildcard or default
    https_dev: bool | None = None

    def applied(self, site: SiteRecord, facts: Facts) -> SiteRecord:
        """`site` with these settings, each checked first (one-line errors)."""
        changes: dict[str, object] = {}
        if self.kind is not None:
            if self.kind not in ("auto", *model.SITE_KINDS):
                raise UsageError(f'--type {self.kind}: expected one of auto '
                                 f'{" ".join(model.SITE_KINDS)}')
            changes["kind"] = "" if self.kind == "auto" else self.kind
        if self.hsts is not None:
            changes["hsts"] = self.hsts
        if self.cache_ttl is not None:
            top = int(load_profile("nginx")["speed_booster"]["ttl_max_s"])
            if not 0 <= self.cache_ttl <= top:
                raise UsageError(f"--cache-ttl {self.cache_ttl}: expected 0 (the default) to "
                                 f"{top} seconds")
            changes["cache_ttl"] = self.cache_ttl
        if (self.certificate is None) != (self.certificate_key is None):
            raise UsageError("give --certificate and --certificate-key together")
        if self.certificate is not None and self.certificate_key is not None:
            pair = [self.certificate, self.certificate_key]
            if any(pair) and not all(pair):
                raise UsageError("give --certificate and --certificate-key together")
            for option, path in zip(("--certificate", "--certificate-key"), pair, strict=True):
                if path and not (path.startswith("/") and facts.target.path(path).is_file()):
                    raise ConfigError(f"{option} {path}: no such file (an absolute path)")
            changes["certificate"], changes["certificate_key"] = pair
        changes.update(certificate.choice(self.https, self.https_dev, self.certificate))
        return replace(site, **changes)  # type: ignore[arg-type]




DEFAULT_SETTINGS = SiteSettings()
