"""`octopus site login oN DOMAIN` (a one-time login link for the site's first user) and
`octopus site cron oN DOMAIN` (Drupal's cron, run by the instance's cron file): both run
Drupal's own operation as the instance's shell user and change nothing of octopus's own.
A failed cron run is logged as an incident (/var/log/barracuda/incidents.log)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from installer.drupal.detect import Platform
from installer.errors import BarracudaError, ConfigError, UsageError
from installer.incidents import record_incident
from installer.octopus import codebase, model
from installer.octopus.model import Instance, SiteRecord
from installer.octopus.sites.drupal import run_as, site_uri, tool
from installer.runner import Runner
from installer.target import Target


@dataclass(frozen=True)
class DrupalSite:
    instance: Instance
    site: SiteRecord
    platform: Platform
    php: str


def pool_versions(target: Target, instance: Instance) -> list[str]:
    """The PHP versions the instance has a pool on (its own version among them)."""
    base = target.path("/etc/php")
    return sorted(p.parts[-4] for p in base.glob(f"*/fpm/pool.d/{instance.name}.conf"))


def drupal_site(target: Target, name: str, domain: str) -> DrupalSite:
    """The recorded Drupal site `domain` of instance `name`, with its platform and PHP."""
    instance = model.existing(target, name)
    site = next((s for s in model.sites(target, instance) if s.domain == domain.lower()), None)
    if site is None:
        known = " ".join(s.domain for s in model.sites(target, instance)) or "none"
        raise ConfigError(f'instance {name} has no site "{domain}" (sites: {known})')
    platform = codebase.read(target, instance, site.platform)
    if platform is None or not platform.is_drupal:
        raise UsageError(f"{site.domain} is not a Drupal site (platform {site.platform})")
    versions = pool_versions(target, instance)
    php = site.php or (versions[0] if len(versions) == 1 else "")
    if not php:
        raise ConfigError(f"cannot tell the PHP version of {site.domain}: pools of {name} on "
                          f"{' '.join(versions) or 'no version'}; run `octopus up-stable {name}`")
    return DrupalSite(instance, site, platform, php)


def login_link(runner: Runner, target: Target, name: str, domain: str) -> str:
    found = drupal_site(target, name, domain)
    drupal = tool(found.instance, found.platform, found.php)
    result = run_as(runner, found.instance, drupal.user_login(uri=site_uri(found.site)))
    return drupal.parse_user_login(result)


def run_cron(runner: Runner, target: Target, name: str, domain: str,
             root: Path = Path("/")) -> None:
    """Drupal's cron of one site; a failure is logged as an incident and raised. A disabled
    site's cron does not run (its cron entry is gone; this refuses a leftover one)."""
    found = drupal_site(target, name, domain)
    if found.site.disabled:
        raise UsageError(f"{found.site.domain} is disabled: its cron does not run "
                         f"(`octopus site enable {name} {found.site.domain}`)")
    drupal = tool(found.instance, found.platform, found.php)
    try:
        drupal.parse_cron(run_as(runner, found.instance, drupal.cron(uri=site_uri(found.site))))
    except BarracudaError as exc:
        record_incident("site-cron", str(exc), f"drupal cron of {found.site.domain} as "
                        f"{found.instance.name}", "failed", root=root,
                        instance=found.instance.name, site=found.site.domain)
        raise
