"""The rules for instance names, platform names and domains: one-line errors, exit 3."""

from __future__ import annotations

import hashlib
import re

from installer.data import load_profile
from installer.errors import ConfigError

# A host name: labels of letters, digits and inner dashes, at least one dot, at most 253.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})+")


def _names() -> dict[str, object]:
    names: dict[str, object] = load_profile("octopus")["names"]
    return names


def check_instance_name(name: str) -> str:
    """`name` when it may name an instance; ConfigError saying which rule it breaks."""
    rules = _names()
    pattern = str(rules["instance_pattern"])
    if not re.fullmatch(pattern, name):
        raise ConfigError(
            f'bad instance name "{name}": expected lowercase letters, digits, dots and dashes, '
            "starting with a letter, at most 24 characters (for example o1)")
    if name in rules["reserved"]:  # type: ignore[operator]
        raise ConfigError(f'bad instance name "{name}": it is reserved')
    for part in rules["forbidden_parts"]:  # type: ignore[attr-defined]
        if part in name:
            raise ConfigError(f'bad instance name "{name}": it may not contain "{part}"')
    return name


def check_platform_name(name: str) -> str:
    if not re.fullmatch(str(_names()["platform_pattern"]), name):
        raise ConfigError(f'bad platform name "{name}": expected lowercase letters, digits, '
                          "dots, dashes and underscores, at most 64 characters")
    return name


def check_domain(domain: str, what: str = "domain") -> str:
    """A lowercase fully qualified name such as example.org (no scheme, port or path)."""
    lowered = domain.lower().rstrip(".")
    if len(lowered) > 253 or not _DOMAIN.fullmatch(lowered):
        raise ConfigError(f'bad {what} "{domain}": expected a host name such as example.org')
    return lowered


def db_prefix(instance: str) -> str:
    """The prefix of an instance's databases: its name with dots and dashes as underscores
    (MariaDB database names may not hold dots)."""
    return re.sub(r"[.-]", "_", instance)


def db_identifier(instance: str, domain: str, limit: int) -> str:
    """`<prefix>_<domain>` made of [a-z0-9_], shortened with a hash of the domain when longer
    than `limit` (64 for database names, 32 for user names)."""
    name = f"{db_prefix(instance)}_{re.sub(r'[^a-z0-9]', '_', domain)}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(domain.encode()).hexdigest()[:8]
    return f"{name[:limit - 9]}_{digest}"
