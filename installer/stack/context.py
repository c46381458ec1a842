"""What every stack component is built from: the release's data, the paths, the tuning
computed from the facts, the PHP versions and the secrets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from installer.stack.release import Release
from installer.stack.tuning import Tuning


@dataclass(frozen=True)
class StackContext:
    release: Release
    paths: dict[str, str]
    tuning: Tuning
    php_versions: tuple[str, ...]  # every FPM version to install, the master's first
    php_cli: str
    mariadb_root_password: str
    redis_password: str
    ipv6: bool = True

    @property
    def php_default(self) -> str:
        return self.php_versions[0]

    def template_context(self, php_version: str | None = None) -> dict[str, Any]:
        return {
            "tuning": self.tuning,
            "paths": self.paths,
            "php_version": php_version or self.php_default,
            "php_versions": list(self.php_versions),
            "redis_password": self.redis_password,
            "mariadb_root_password": self.mariadb_root_password,
            "ipv6": self.ipv6,
        }
