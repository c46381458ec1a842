"""The data of one distribution release (profiles/distros.yml): package and service names,
the PHP versions it packages. Nothing here is hard-coded per release in Python."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from installer.data import load_profile
from installer.errors import DataError, PreflightError


@dataclass(frozen=True)
class Release:
    codename: str
    data: dict[str, Any]

    @classmethod
    def load(cls, codename: str) -> Release:
        releases: dict[str, Any] = load_profile("distros")["releases"]
        if codename not in releases:
            names = ", ".join(f"{r['name']}" for r in releases.values())
            raise PreflightError(f"unsupported distribution release {codename!r}; "
                                 f"supported: {names}")
        return cls(codename, releases[codename])

    @property
    def name(self) -> str:
        return str(self.data["name"])

    def _get(self, *keys: str) -> Any:
        node: Any = self.data
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                raise DataError(f"profiles/distros.yml: {self.codename}: missing {'.'.join(keys)}")
            node = node[key]
        return node

    @property
    def php_versions(self) -> list[str]:
        return [str(v) for v in self._get("php", "versions")]

    @property
    def php_default(self) -> str:
        return str(self._get("php", "default"))

    def packages(self, component: str, php_version: str = "") -> list[str]:
        if component == "php":
            return [str(p).replace("X.Y", php_version) for p in self._get("php", "packages")]
        return [str(p) for p in self._get("packages", component)]

    def service(self, component: str, php_version: str = "") -> str:
        if component == "php":
            return str(self._get("php", "service")).replace("X.Y", php_version)
        return str(self._get("services", component))

    def fpm_binary(self, php_version: str) -> str:
        return str(self._get("php", "fpm_binary")).replace("X.Y", php_version)

    @property
    def nginx_http2(self) -> str:
        """How this release's nginx turns on HTTP/2: "listen" (a listen flag) or "directive"."""
        return str(self._get("nginx_http2"))

    @property
    def versions_of(self) -> list[str]:
        """Packages whose versions each install records in versions.log."""
        return [str(p).replace("X.Y", self.php_default) for p in self.data.get("versions_of", [])]
