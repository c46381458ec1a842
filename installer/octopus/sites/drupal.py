"""Running Drupal's own operations on an instance's site (install, status, cron, login) as
the instance's shell user, never as root: the files Drupal writes then belong to the
instance, as they will for Drush and cron later. The secrets of an invocation (the admin
password) go through its environment, never its argv, and into the run's Redactor."""

from __future__ import annotations

from pathlib import Path

from installer.drupal.detect import DRUPAL7, Platform
from installer.drupal.drush import DrupalTool, Invocation, SiteStatus
from installer.octopus.model import Instance, SiteRecord
from installer.runner import Result, Runner

PHP_BINARY = "/usr/bin/php{version}"


def tool(instance: Instance, platform: Platform, php: str) -> DrupalTool:
    """The site's Drupal tool, run by the PHP CLI of the site's version."""
    script = Path(instance.d7tool) if platform.core == DRUPAL7 else None
    return DrupalTool.for_platform(platform, php=PHP_BINARY.format(version=php), d7tool=script)


def site_uri(site: SiteRecord) -> str:
    return f"https://{site.domain}"


def run_as(runner: Runner, instance: Instance, invocation: Invocation,
           timeout: float | None = None) -> Result:
    """`invocation` run as the instance's shell user, in its home, with its own tmp."""
    env = {"HOME": instance.root, "TMPDIR": f"{instance.root}/tmp", **invocation.env}
    return runner.run(invocation.as_user(instance.name).argv, env=env, check=False,
                      timeout=timeout or invocation.timeout)


def status(runner: Runner, instance: Instance, platform: Platform, php: str,
           site: SiteRecord) -> SiteStatus:
    drupal = tool(instance, platform, php)
    return drupal.parse_status(run_as(runner, instance, drupal.status(uri=site_uri(site))))
