"""What a converged machine must look like, derived from the same profiles the installer
used and the facts of the machine under test (read through its testinfra host)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from installer.config.cnf import parse_text
from installer.config.schema import validate
from installer.data import load_profile
from installer.facts import parse_os_release
from installer.stack.release import Release
from installer.stack.tuning import Tuning, TuningFacts, compute

CONFIG = "/root/.barracuda.cnf"
SECRETS = "/var/lib/barracuda/secrets"


@dataclass(frozen=True)
class Expected:
    release: Release
    php: str
    tuning: Tuning
    paths: dict[str, str]

    @property
    def services(self) -> list[str]:
        r = self.release
        return [r.service("nginx"), r.service("php", self.php), r.service("mariadb"),
                r.service("redis"), r.service("cron")]


@functools.cache
def _expected_for(os_release: str, meminfo_kb: int, cpus: int, config_text: str) -> Expected:
    release = Release.load(parse_os_release(os_release).codename)
    config = validate(parse_text(config_text, CONFIG))
    php = config["_PHP_FPM_VERSION"]
    php = release.php_default if php == "AUTO" else php
    tuning = compute(load_profile("tuning"), TuningFacts(
        ram_mib=meminfo_kb // 1024, cpus=cpus, reserved_ram_mib=config["_RESERVED_RAM"],
        nginx_workers=config["_NGINX_WORKERS"], php_fpm_workers=config["_PHP_FPM_WORKERS"]))
    return Expected(release, php, tuning, {k: str(v) for k, v in load_profile("paths").items()})


def expected(host: Any) -> Expected:
    meminfo = host.file("/proc/meminfo").content_string
    total_kb = int(next(line.split()[1] for line in meminfo.splitlines()
                        if line.startswith("MemTotal:")))
    cpus = int(host.check_output("getconf _NPROCESSORS_ONLN"))
    return _expected_for(host.file("/etc/os-release").content_string, total_kb, cpus,
                         host.file(CONFIG).content_string)


def sql(host: Any, query: str) -> str:
    return str(host.check_output(f"mariadb --batch --skip-column-names -e \"{query}\"")).strip()


def redis(host: Any, *args: str) -> str:
    exp = expected(host)
    return str(host.check_output(
        f"REDISCLI_AUTH=$(cat {SECRETS}/redis) redis-cli -s {exp.paths['redis_socket']} "
        + " ".join(args))).strip()
