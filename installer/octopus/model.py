"""An instance's names and paths, and the records of its platforms and sites.

Records are small YAML files under /data/disk/oN/config/{platforms,sites}/ (root, 0600: a
site's record holds its database password). They are the instance's desired state: every
converge renders the pool, the Nginx includes and the databases from them, and a command
that adds or removes a platform or a site changes a record in the same run (so a failed run
rolls the record back with everything else)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from installer.config.text import shown
from installer.data import load_profile, parse_yaml
from installer.errors import ConfigError
from installer.target import Target


def paths() -> dict[str, str]:
    return {k: str(v) for k, v in load_profile("paths").items()}


@dataclass(frozen=True)
class Instance:
    name: str

    @property
    def root(self) -> str:
        return f"{paths()['instances_dir']}/{self.name}"

    @property
    def config_file(self) -> str:
        return f"/root/.{self.name}.octopus.cnf"

    @property
    def group(self) -> str:
        return self.name

    @property
    def web_user(self) -> str:
        return f"{self.name}.web"

    @property
    def ftp_user(self) -> str:
        return f"{self.name}.ftp"

    @property
    def users(self) -> tuple[str, str, str]:
        return self.name, self.ftp_user, self.web_user

    @property
    def web_home(self) -> str:
        return f"/home/{self.web_user}"

    @property
    def ftp_home(self) -> str:
        return f"/home/{self.ftp_user}"

    @property
    def vhost_dir(self) -> str:
        return f"{self.root}/config/server_master/nginx/vhost.d"

    @property
    def nginx_include(self) -> str:
        return f"{paths()['server_master']}/nginx/platform.d/{self.name}.conf"

    def vhost(self, domain: str) -> str:
        return f"{self.vhost_dir}/{domain}.conf"

    def platform_dir(self, platform: str) -> str:
        return f"{self.root}/platforms/{platform}"

    def docroot(self, platform: str, rel: str = "") -> str:
        """The directory a platform's vhosts serve: its top, or `web/`, `docroot/` ..."""
        top = self.platform_dir(platform)
        return f"{top}/{rel}" if rel else top

    def site_dir(self, site: SiteRecord) -> str:
        return f"{self.docroot(site.platform, site.docroot)}/sites/{site.domain}"

    @property
    def secrets_dir(self) -> str:
        """The sites' credentials files: root:oN.secrets 0750, outside every platform tree,
        inside the pool's open_basedir (profiles/octopus.yml)."""
        return f"{self.root}/secrets"

    @property
    def secrets_group(self) -> str:
        """Only the instance's shell and web users are in it (not its FTP user, not the
        web server, which are in the instance group)."""
        return f"{self.name}.secrets"

    def credentials_file(self, domain: str) -> str:
        return f"{self.secrets_dir}/{domain}.php"

    @property
    def cron_file(self) -> str:
        """The name of the instance's /etc/cron.d file (cron skips names with dots)."""
        return "barracuda-octopus-" + self.name.replace(".", "_")

    @property
    def d7tool(self) -> str:
        """The tool's Drupal 7 helper, copied where the instance's user can read it."""
        return f"{self.root}/tools/d7tool.php"

    def platform_record(self, platform: str) -> str:
        return f"{self.root}/config/platforms/{platform}.yml"

    def site_record(self, domain: str) -> str:
        return f"{self.root}/config/sites/{domain}.yml"

    def pool_file(self, version: str) -> str:
        return f"{paths()['php_etc_dir']}/{version}/fpm/pool.d/{self.name}.conf"

    def socket(self, version: str) -> str:
        return f"{paths()['php_run_dir']}/{self.name}.{version}.sock"

    def upstream(self, version: str) -> str:
        return f"octopus-{self.name}-php{version.replace('.', '')}"


@dataclass(frozen=True)
class PlatformRecord:
    name: str
    source: str  # the directory it was copied from, or the git URL it was cloned from
    via: str = "copy"  # copy or git
    ref: str = ""  # the git ref, for a cloned platform
    kind: str = "plain"  # drupal (8 and later), drupal7 or plain: picks the vhost
    # What installer.drupal.detect found in the tree (Platform.as_record(): core, version,
    # docroot, profiles, drush, php_min ...); {} in records written before detection.
    detected: dict[str, Any] = field(default_factory=dict)

    @property
    def docroot(self) -> str:
        return str(self.detected.get("docroot", ""))

    def describe(self) -> str:
        """Core and version for `platform list`: 'Drupal 7.101', 'PHP', 'plain'."""
        core = self.detected.get("core", "")
        if core in ("drupal", "drupal7"):
            return f"Drupal {self.detected.get('version', '')}".strip()
        return "PHP" if core == "php" else self.kind

    def dump(self) -> str:
        return yaml.safe_dump(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class SiteRecord:
    domain: str
    platform: str
    db_name: str
    db_user: str
    db_password: str
    aliases: tuple[str, ...] = ()
    php: str = ""  # "" = the instance's version
    certificate: str = ""  # the site's own certificate and key, "" = the wildcard one
    certificate_key: str = ""
    https: str = ""  # letsencrypt or wildcard; "" = the instance's, else the machine's _HTTPS
    https_dev: bool = False  # a Let's Encrypt certificate covers the dev aliases too
    kind: str = ""  # the vhost type: drupal, drupal7 or plain; "" = the platform's
    hsts: bool = False  # Strict-Transport-Security on HTTPS answers
    cache_ttl: int = 0  # Speed Booster seconds for anonymous 200s; 0 = profiles/nginx.yml's
    extra: dict[str, Any] = field(default_factory=dict)
    docroot: str = ""  # the platform's docroot relative to its top ("", "web", "docroot")
    # Made once (at add or install) and kept: settings.php is managed only when it is set
    # (a new salt would break every one-time login link and form token).
    hash_salt: str = ""
    installed: bool = False  # Drupal's installer ran (install.php is then denied)
    profile: str = ""  # the install profile it was installed with
    # `octopus site disable`: Nginx answers 503 on every name, no cron; its data stays.
    disabled: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return (self.domain, *self.aliases)

    def dump(self) -> str:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        if not self.disabled:
            # Written only when set: an enabled site's record stays as earlier releases
            # wrote it (no change at upgrade, readable again after a rollback).
            del data["disabled"]
        return yaml.safe_dump(data, sort_keys=True)


SITE_KINDS = ("drupal", "drupal7", "php", "plain")  # plain: the older name of php


def platform_kind(tree: Path) -> str:
    """The vhost type a codebase needs: drupal (8 and later), drupal7 or plain."""
    if (tree / "core/lib/Drupal.php").is_file():
        return "drupal"
    if (tree / "includes/bootstrap.inc").is_file():
        return "drupal7"
    return "plain"


def _read(target: Target, path: str, kind: type[Any]) -> Any:
    real = target.path(path)
    try:
        data = parse_yaml(real.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError("not a mapping")
        if "aliases" in data:
            data["aliases"] = tuple(data["aliases"] or ())
        return kind(**data)
    except (OSError, yaml.YAMLError, TypeError) as exc:
        raise ConfigError(f"unreadable record ({exc}); restore it from the last checkpoint "
                          "in /var/backups/barracuda/checkpoints", path=path) from None


def _records(target: Target, directory: str, kind: type[Any]) -> list[Any]:
    real = target.path(directory)
    if not real.is_dir():
        return []
    return [_read(target, f"{directory}/{p.name}", kind)
            for p in sorted(real.glob("*.yml"))]


def platforms(target: Target, instance: Instance) -> list[PlatformRecord]:
    return _records(target, f"{instance.root}/config/platforms", PlatformRecord)


def sites(target: Target, instance: Instance) -> list[SiteRecord]:
    return _records(target, f"{instance.root}/config/sites", SiteRecord)


def instance_names(target: Target) -> list[str]:
    """The instances of this machine: each /data/disk/NAME with its /root/.NAME.octopus.cnf."""
    base = target.path(paths()["instances_dir"])
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir()
                  if p.is_dir() and target.path(Instance(p.name).config_file).is_file())


def existing(target: Target, name: str) -> Instance:
    """The instance `name`; ConfigError when there is none."""
    if name not in instance_names(target):
        known = " ".join(instance_names(target)) or "none"
        raise ConfigError(f"unknown instance {shown(name, 30)} (instances: {known})")
    return Instance(name)


def domain_owner(target: Target, domain: str) -> tuple[str, str] | None:
    """(instance, site domain) of the site that answers `domain` (its name or an alias)."""
    for name in instance_names(target):
        for site in sites(target, Instance(name)):
            if domain in site.names:
                return name, site.domain
    return None
