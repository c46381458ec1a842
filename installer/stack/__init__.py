"""The stack, one module per component. `build` is pure apart from reading facts: config and
facts in, components (desired resources, validators, health probes) out."""

from __future__ import annotations

from installer.config import Config
from installer.data import load_profile
from installer.errors import ConfigError, DataError
from installer.facts import Facts
from installer.plan import Component
from installer.resources.files import Directory
from installer.resources.system import Packages
from installer.runlog import Redactor
from installer.stack import (
    backup,
    base,
    firewall,
    ftp,
    mariadb,
    nginx,
    php,
    redis,
    schedule,
    ssh,
)
from installer.stack import monitor as monitor_stack
from installer.stack.context import StackContext
from installer.stack.processes import component as processes_component
from installer.stack.release import Release
from installer.stack.secrets import SECRETS_DIR, Secrets
from installer.stack.tuning import OperatorChoice, Tuning, TuningFacts, compute


def php_versions(config: Config, release: Release) -> tuple[tuple[str, ...], str]:
    """The FPM versions to install (the master's first) and the CLI version, from
    _PHP_SINGLE_INSTALL, _PHP_FPM_VERSION, _PHP_MULTI_INSTALL and _PHP_CLI_VERSION."""
    offered = release.php_versions
    allowed = "AUTO or " + " ".join(offered)

    def check(key: str, version: str) -> str:
        if version not in offered:
            raise config.error(key, f'PHP {version} is not packaged for {release.name}; '
                                    f'allowed: {allowed}')
        return version

    single = config["_PHP_SINGLE_INSTALL"]
    if single:
        version = check("_PHP_SINGLE_INSTALL", single)
        return (version,), version
    fpm = config["_PHP_FPM_VERSION"]
    fpm = release.php_default if fpm == "AUTO" else check("_PHP_FPM_VERSION", fpm)
    extra = [check("_PHP_MULTI_INSTALL", v) for v in config["_PHP_MULTI_INSTALL"] if v != fpm]
    versions = (fpm, *extra)
    cli = config["_PHP_CLI_VERSION"]
    if cli == "AUTO":
        cli = fpm
    elif check("_PHP_CLI_VERSION", cli) not in versions:
        raise config.error("_PHP_CLI_VERSION", f"PHP {cli} is not among the installed versions "
                                               f"{' '.join(versions)}")
    return versions, cli


def tuning_for(config: Config, facts: Facts) -> Tuning:
    wanted = TuningFacts(
        ram_mib=facts.ram_mib, cpus=facts.cpus, reserved_ram_mib=config["_RESERVED_RAM"],
        nginx_workers=config["_NGINX_WORKERS"], php_fpm_workers=config["_PHP_FPM_WORKERS"],
    )
    if config["_RESERVED_RAM"] >= facts.ram_mib:
        raise config.error("_RESERVED_RAM", f"reserves {config['_RESERVED_RAM']} MiB of the "
                                            f"{facts.ram_mib} MiB this machine has")
    try:
        return compute(load_profile("tuning"), wanted)
    except OperatorChoice as exc:
        raise config.error(exc.key, str(exc)) from None
    except ValueError as exc:
        raise DataError(f"profiles/tuning.yml: {exc}") from exc


def stack_context(config: Config, facts: Facts, secrets: Secrets) -> StackContext:
    """What every component is built from; octopus builds its instances on the same."""
    release = Release.load(facts.distro.codename)
    versions, cli = php_versions(config, release)
    return StackContext(
        release=release,
        paths={k: str(v) for k, v in load_profile("paths").items()},
        tuning=tuning_for(config, facts),
        php_versions=versions,
        php_cli=cli,
        mariadb_root_password=secrets.get("mariadb-root"),
        redis_password=secrets.get("redis"),
        ipv6=facts.ipv6,
    )


def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
    secrets = Secrets(facts, redactor, config["_STRONG_PASSWORDS"])
    stack = stack_context(config, facts, secrets)
    release, versions = stack.release, stack.php_versions
    mariadb_password, redis_password = stack.mariadb_root_password, stack.redis_password
    packages = [*release.packages("nginx"), *release.packages("mariadb"),
                *release.packages("redis")]
    for version in versions:
        packages += release.packages("php", version)
    components = [
        base.component(config, release.codename),
        processes_component(),
        Component("secrets", [Directory(SECRETS_DIR, mode=0o700),
                              *secrets.resources("mariadb-root", mariadb_password)[1:],
                              *secrets.resources("redis", redis_password)[1:]]),
        Component("packages", [Packages("stack", list(dict.fromkeys(packages)))],
                  notes=stack.tuning.explain()),
        mariadb.component(stack),
        mariadb.accounts_component(stack),
        redis.component(stack),
        *(php.component(stack, version) for version in versions),
        php.cli_component(stack),
        nginx.component(stack),
        *ftp.build_components(config, stack),
        *firewall.build_components(config, facts),
        ssh.component(config),
        backup.component(config),
        schedule.component(config),
    ]
    # Last: the monitor watches the services of every component above.
    components.append(monitor_stack.component(components, release, stack.paths, facts))
    return components


__all__ = ["ConfigError", "build", "php_versions", "stack_context", "tuning_for"]
