"""The converge of a release channel: `barracuda install`'s components, with the stack's
packages moved to the channel's versions right after they are installed."""

from __future__ import annotations

from installer.config import Config
from installer.facts import Facts
from installer.plan import Builder, Component
from installer.resources.base import Resource, restart
from installer.runlog import Redactor
from installer.stack import build, php_versions
from installer.stack.release import Release
from installer.upgrade.manifest import Manifest
from installer.upgrade.packages import PackageUpgrade, SystemUpgrade


def _check_php(config: Config, release: Release, offered: list[str], channel: str) -> None:
    versions, _ = php_versions(config, release)
    for index, version in enumerate(versions):
        if version in offered:
            continue
        key = ("_PHP_SINGLE_INSTALL" if config["_PHP_SINGLE_INSTALL"] else
               "_PHP_FPM_VERSION" if index == 0 else "_PHP_MULTI_INSTALL")
        raise config.error(key, f'PHP {version} is not in the {channel} channel for '
                                f'{release.name}; it offers {" ".join(offered)}')


def upgrades(manifest: Manifest, release: Release, php: tuple[str, ...]) -> Component:
    """One PackageUpgrade per component (per PHP version), each restarting only its own
    service when its packages moved."""
    pins = manifest.pins(release.codename)
    resources: list[Resource] = []
    for name in manifest.components:
        if name == "php":
            for version in php:
                resources.append(PackageUpgrade(
                    f"php{version}", release.packages("php", version), pins,
                    notify=(restart(release.service('php', version)),),
                    requires=("packages:stack",)))
        else:
            resources.append(PackageUpgrade(
                name, release.packages(name), pins,
                notify=(restart(release.service(name)),), requires=("packages:stack",)))
    return Component("upgrades", resources)


def channel_build(manifest: Manifest) -> Builder:
    """The Builder run_converge takes for `up-stable` / `up-head`."""

    def builder(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        release = Release.load(facts.distro.codename)
        _check_php(config, release, manifest.php_versions(release.codename), manifest.channel)
        components = build(config, facts, redactor)
        versions, _ = php_versions(config, release)
        step = upgrades(manifest, release, versions)
        step.health = [probe for c in components for probe in c.health]
        at = next((i + 1 for i, c in enumerate(components) if c.name == "packages"),
                  len(components))
        return [*components[:at], step, *components[at:]]

    return builder


def system_build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
    """BOA's `system` mode: operating-system packages only; the stack's health probes run
    when anything moved."""
    probes = [probe for c in build(config, facts, redactor) for probe in c.health]
    return [Component("system", [SystemUpgrade()], health=probes)]
