"""The rules for instance names, platform names, domains and the sources of a platform:
one-line errors, exit 3. A name is shown escaped and cut (installer/config/text.py), so a
newline or a megabyte in an argument cannot split or flood the message."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from installer.config.text import control_character, shown
from installer.data import load_profile
from installer.errors import ConfigError

# A host name: labels of letters, digits and inner dashes, at least one dot, at most 253.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})+")
# user@host:path, git's scp-like form for SSH.
_SCP = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!-)[^\s:]+")
# scheme://[user@]host[:port]/path
_URL = re.compile(r"(?P<scheme>[a-z]+)://(?:[A-Za-z0-9._~%-]+@)?(?!-)[A-Za-z0-9.-]+"
                  r"(?::[0-9]{1,5})?/(?!-)\S+")


def _names() -> dict[str, Any]:
    names: dict[str, Any] = load_profile("octopus")["names"]
    return names


def check_instance_name(name: str) -> str:
    """`name` when it may name an instance; ConfigError saying which rule it breaks."""
    rules = _names()
    if not re.fullmatch(str(rules["instance_pattern"]), name):
        raise ConfigError(
            f"bad instance name {shown(name, 30)}: expected lowercase letters, digits, dots "
            "and dashes, starting with a letter, at most 24 characters (for example o1)")
    if name in rules["reserved"]:
        raise ConfigError(f"bad instance name {shown(name)}: it is reserved")
    for part in rules["forbidden_parts"]:
        if part in name:
            raise ConfigError(f'bad instance name {shown(name)}: it may not contain "{part}"')
    for suffix in rules["forbidden_suffixes"]:
        if name.endswith(suffix):
            owner = name.removesuffix(suffix)
            raise ConfigError(
                f'bad instance name {shown(name)}: it may not end in "{suffix}" ({name} is '
                f"the name of instance {owner}'s {suffix.lstrip('.')} user)")
    return name


def accounts(name: str) -> tuple[str, ...]:
    """The system user and group names an instance takes: oN (user and group), oN.ftp and
    oN.web (as installer/octopus/model.py Instance.users names them)."""
    return name, f"{name}.ftp", f"{name}.web"


def check_accounts_free(name: str, instances: Iterable[str]) -> None:
    """A new instance may not take a user or group name that an existing instance has."""
    mine = set(accounts(name))
    for other in instances:
        taken = sorted(mine & set(accounts(other)))
        if taken and other != name:
            raise ConfigError(f'cannot create instance "{name}": {taken[0]} is an account of '
                              f"instance {other}")


def check_platform_name(name: str) -> str:
    if not re.fullmatch(str(_names()["platform_pattern"]), name):
        raise ConfigError(f"bad platform name {shown(name, 30)}: expected lowercase letters, "
                          "digits, dots, dashes and underscores, at most 64 characters")
    return name


def check_domain(domain: str, what: str = "domain") -> str:
    """A lowercase fully qualified name such as example.org (no scheme, port or path)."""
    lowered = domain.lower().rstrip(".")
    if len(lowered) > 253 or not _DOMAIN.fullmatch(lowered):
        raise ConfigError(f"bad {what} {shown(domain)}: expected a host name such as "
                          "example.org")
    return lowered


def check_site_name(domain: str, platform_tree: Path | None = None) -> str:
    """A new site's domain, which is also its directory sites/<domain> in the platform: not
    the name of a file or directory a platform's sites/ has (sites.php, default, all...),
    nor an entry that is already there."""
    rules = _names()
    if domain in rules["reserved_sites"] or domain.endswith(tuple(rules["reserved_site_suffixes"])):
        raise ConfigError(f"bad domain {shown(domain)}: a platform has a file or directory of "
                          "that name in sites/, where the site's directory would go")
    if platform_tree is not None and (platform_tree / "sites" / domain).exists():
        raise ConfigError(f"bad domain {shown(domain)}: the platform already has "
                          f"sites/{domain}, which belongs to no site of this instance")
    return domain


def check_git_url(url: str) -> str:
    """A --git source git clones without surprises: https:// or ssh:// URLs, user@host:path,
    or a repository directory (a path or file:// URL) that exists. Refused: a leading "-"
    (an option to git), git's <transport>:: forms (ext:: runs a command), other schemes
    (http://, git:// are unauthenticated), spaces and control characters."""
    expected = ("expected https://host/path, ssh://host/path, user@host:path, or an "
                "existing repository directory")
    if url.startswith("-"):
        raise ConfigError(f"bad --git {shown(url)}: it may not start with \"-\"; {expected}")
    if "::" in url.split("/", 1)[0]:
        raise ConfigError(f"bad --git {shown(url)}: git's <transport>:: forms are refused; "
                          f"{expected}")
    if control_character(url) or re.search(r"\s", url):
        raise ConfigError(f"bad --git {shown(url)}: spaces and control characters are not "
                          f"allowed; {expected}")
    if "://" in url:
        if url.startswith("file://"):
            local = url.removeprefix("file://")
            if local.startswith("/") and Path(local).is_dir():
                return url
            raise ConfigError(f"bad --git {shown(url)}: no such directory; {expected}")
        match = _URL.fullmatch(url)
        if not match or match["scheme"] not in _names()["git_schemes"]:
            raise ConfigError(f"bad --git {shown(url)}: {expected}")
        return url
    if _SCP.fullmatch(url):
        return url
    if ":" in url.split("/", 1)[0] or not Path(url).is_dir():
        raise ConfigError(f"bad --git {shown(url)}: not a URL git may use, nor an existing "
                          f"directory; {expected}")
    return url


def check_git_ref(ref: str) -> str:
    if not re.fullmatch(str(_names()["git_ref_pattern"]), ref):
        raise ConfigError(f"bad --ref {shown(ref)}: expected a branch or tag name (letters, "
                          "digits and . _ / + -, not starting with -, no ..)")
    return ref


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
