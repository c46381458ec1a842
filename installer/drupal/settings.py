"""A site's generated settings.php (Drupal 7 and Drupal 8+) and its credentials file.

Two files per site, both rendered here from templates/drupal/ and written by octopus:

* the credentials file (`credentials_php(db, redis)`): a PHP file that returns the site's
  database credentials and, when the instance has one, its Redis ACL user. It lives OUTSIDE
  the platform tree (a platform is code: it is copied, archived and pushed to git), e.g.
  `/data/disk/oN/secrets/DOMAIN.php`. Requirements octopus must meet, or the site answers
  503: the file is readable by the instance's web user (PHP-FPM) and shell user (Drush,
  cron) and nobody else (0440 root:oN with only oN.web and oN in group oN, or an ACL), every
  directory above it is traversable by them, and its directory is inside the pool's
  `open_basedir`. (The instance's `config/` is 0700 root today, so it cannot live there.)
* settings.php (`settings_php(site)`), in `<docroot>/sites/DOMAIN/`, read-only for the web
  user (0440). It includes the credentials file, and falls back to the `$_SERVER['db_*']`
  values the vhost passes (templates/nginx/site_vhost.conf.j2) for web requests; it unsets
  them so they never reach an error page. With neither, it answers 503 rather than sending
  the visitor to Drupal's installer.

What settings.php holds besides: the hash salt (made once by `new_hash_salt()` and kept in
the site's record: a new salt breaks every one-time login link and form token), trusted host
patterns from the site's names (8+), public/private/temp file paths and the config sync
directory (8+), reverse-proxy trust (only of addresses octopus names), error display on dev
aliases only, Redis when the platform ships the redis module and a Redis user is given (with
the database cache kept when Redis does not answer, and `?noredis=1` on a dev alias), and
finally an operator's own `local.settings.php` beside it.

HTTPS: the vhost terminates TLS itself and includes Debian's fastcgi_params, which passes
`HTTPS on` (`fastcgi_param HTTPS $https if_not_empty`), so Drupal sees HTTPS directly; only a
proxy in front of Nginx needs `proxy_addresses` (its X-Forwarded-Proto is then trusted).
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from installer.drupal.detect import DRUPAL, DRUPAL7, Platform
from installer.errors import UsageError
from installer.templates import render

MANAGED_HEADER = "Managed by barracuda"

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass(frozen=True)
class DatabaseCredentials:
    name: str
    user: str
    password: str
    host: str = "localhost"
    port: int = 3306


@dataclass(frozen=True)
class RedisCredentials:
    """The instance's Redis ACL user (Redis 6+ `AUTH user password`)."""

    user: str
    password: str
    host: str = "127.0.0.1"
    port: int = 6379


@dataclass(frozen=True)
class SiteSettings:
    """Everything a site's settings.php depends on; octopus builds it from its records."""

    platform: Platform
    domain: str
    credentials_file: Path  # absolute, outside the platform tree
    hash_salt: str  # from new_hash_salt(), once, then kept
    names: tuple[str, ...] = ()  # every name the vhost answers to (the domain is added)
    dev_names: tuple[str, ...] = ()  # the dev aliases among them
    proxy_addresses: tuple[str, ...] = ()  # a TLS-terminating proxy in front of Nginx
    redis_prefix: str = ""  # per-site key prefix inside the instance's ACL pattern
    redis: bool = True  # wire Redis when the platform ships the module (and creds have it)
    extra_trusted_hosts: tuple[str, ...] = field(default=())  # raw regexes, already anchored

    @property
    def all_names(self) -> tuple[str, ...]:
        seen: list[str] = []
        for name in (self.domain, *self.names, *self.dev_names):
            if name.lower() not in seen:
                seen.append(name.lower())
        return tuple(seen)


def new_hash_salt() -> str:
    """A fresh hash salt (55 random bytes, base64 without padding, like Drupal's own)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(55)).decode().rstrip("=")


def php_string(value: object) -> str:
    """A PHP single-quoted string literal holding `value` exactly."""
    text = str(value)
    if "\0" in text:
        raise UsageError("a NUL byte cannot go into settings.php")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def host_pattern(name: str) -> str:
    """An anchored regular expression matching exactly the host `name` (case is Drupal's)."""
    return "^" + re.escape(name.lower()) + "$"


def _check_name(name: str) -> str:
    if not _HOSTNAME.match(name.lower()):
        raise UsageError(f"{name!r} is not a valid host name")
    return name.lower()


def site_paths(domain: str) -> dict[str, str]:
    """The site's file paths relative to the docroot (what Drupal's settings expect)."""
    base = f"sites/{domain}"
    return {
        "site_dir": base,
        "public": f"{base}/files",
        "private": f"{base}/private/files",
        "temp": f"{base}/private/temp",
        "config_sync": f"{base}/private/config/sync",
    }


def _mysql_driver_module(platform: Platform) -> bool:
    """Drupal 9.4+ ships the MySQL driver as core's `mysql` module (namespace and autoload)."""
    return (platform.docroot / "core" / "modules" / "mysql" / "src" / "Driver" / "Database"
            / "mysql").is_dir()


def settings_php(site: SiteSettings) -> str:
    """The text of `sites/DOMAIN/settings.php` for the site's core."""
    platform = site.platform
    if platform.core not in (DRUPAL7, DRUPAL):
        raise UsageError(f"{platform.root} is not Drupal: no settings.php to write")
    if not site.credentials_file.is_absolute():
        raise UsageError(f"{site.credentials_file}: the credentials file needs an absolute path")
    try:
        site.credentials_file.relative_to(platform.root)
    except ValueError:
        pass
    else:
        raise UsageError(f"{site.credentials_file}: credentials must live outside the "
                         f"platform tree {platform.root}")
    if not site.hash_salt or len(site.hash_salt) < 32:
        raise UsageError("settings.php needs a hash salt of 32 characters or more")
    names = tuple(_check_name(name) for name in site.all_names)
    dev_names = tuple(_check_name(name) for name in site.dev_names)
    redis_module = platform.redis_module if site.redis else None
    if redis_module is not None and not _PREFIX.match(site.redis_prefix):
        raise UsageError(f"redis prefix {site.redis_prefix!r}: letters, digits and _.:- only")
    module_rel = ""
    if redis_module is not None:
        module_rel = redis_module.relative_to(platform.docroot).as_posix()
    context = {
        "q": php_string,
        "header": MANAGED_HEADER,
        "domain": _check_name(site.domain),
        "platform": platform,
        "names": names,
        "dev_names": dev_names,
        "trusted_hosts": tuple(host_pattern(n) for n in names) + site.extra_trusted_hosts,
        "credentials_file": str(site.credentials_file),
        "hash_salt": site.hash_salt,
        "paths": site_paths(site.domain),
        "proxy_addresses": site.proxy_addresses,
        "redis_module": module_rel,
        "redis_prefix": site.redis_prefix,
        "mysql_module": platform.core == DRUPAL and _mysql_driver_module(platform),
    }
    name = "drupal/settings.d7.php.j2" if platform.core == DRUPAL7 else "drupal/settings.d8.php.j2"
    return render(name, context)


def credentials_php(db: DatabaseCredentials, redis: RedisCredentials | None = None, *,
                    domain: str = "") -> str:
    """The text of the site's credentials file (PHP returning an array)."""
    return render("drupal/credentials.php.j2", {
        "q": php_string, "header": MANAGED_HEADER, "db": db, "redis": redis,
        "domain": _check_name(domain) if domain else ""})
