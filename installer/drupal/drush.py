"""One interface to run Drupal's own operations on a site, whatever its core.

`DrupalTool.for_platform(platform, php=...)` picks the backend:

* `DrushTool`: Drupal 8+ through the platform's own Drush (`vendor/bin/drush`, Drush 13 in
  the fixtures), run by the chosen PHP binary;
* `D7Tool`: Drupal 7 through the tool's own `templates/drupal/d7tool.php`, which calls
  Drupal 7's install, cron, cache, update, variable and user APIs (no Drush needed).

Each verb returns an `Invocation` (argv, env, timeout) and has a `parse_*` method that reads
the `Result` octopus got from running it and returns what it means, or raises
`DrupalToolError` with one line (the installer's own last message, a failing update's
message):

    tool = DrupalTool.for_platform(platform, php="/usr/bin/php8.4")
    inv = tool.install(uri="https://example.org", profile="standard", site_name="Example",
                       site_mail="ops@example.org", admin_password=new_admin_password())
    result = runner.run(inv.as_user("o1").argv, env=inv.env, timeout=inv.timeout, check=False)
    tool.parse_install(result)

Secrets never reach argv (which every local user can read in /proc): the admin password
(and, when given, the database URL) go through the environment, which only the process's
own user and root can read. Drush reads them as its config
(`DRUSH_COMMAND_SITE_INSTALL_OPTIONS_ACCOUNT_PASS`); with a password given Drush does not
print one. The database credentials normally come from the site's settings.php, which octopus
writes before the install (`settings.settings_php`), so `--db-url` is not needed at all.
`Invocation.secrets` lists the secret values so octopus can redact them from any log.

Run every invocation as the instance's shell user (`Invocation.as_user`): the site's files
then belong to that user, as they will for cron and Drush later.
"""

from __future__ import annotations

import json
import secrets
import string
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from installer.data import templates_dir
from installer.drupal.detect import DRUPAL, DRUPAL7, Platform
from installer.drupal.settings import DatabaseCredentials
from installer.errors import BarracudaError, UsageError
from installer.runner import Result

MARKER = "BARRACUDA-JSON "
ADMIN_PASS_ENV = "BARRACUDA_ACCOUNT_PASS"  # d7tool.php reads it
DRUSH_PASS_ENV = "DRUSH_COMMAND_SITE_INSTALL_OPTIONS_ACCOUNT_PASS"
DRUSH_DB_URL_ENV = "DRUSH_COMMAND_SITE_INSTALL_OPTIONS_DB_URL"

INSTALL_TIMEOUT = 1200.0
DEFAULT_TIMEOUT = 600.0


class DrupalToolError(BarracudaError):
    """Drupal's installer, cron, update or bootstrap failed; the message is its own, on one line."""


def new_admin_password() -> str:
    """A random admin password (24 letters and digits). Nobody needs to know it: the admin
    logs in with `site login`'s one-time link."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(24))


def db_url(db: DatabaseCredentials) -> str:
    """A Drush `--db-url` whose every part is percent-encoded (a password may hold @:/#?)."""
    user = quote(db.user, safe="")
    password = quote(db.password, safe="")
    host = db.host if ":" not in db.host else f"[{db.host}]"
    return f"mysql://{user}:{password}@{host}:{int(db.port)}/{quote(db.name, safe='')}"


def _check_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{uri!r}: a site URI is http:// or https:// with a host name")
    return uri


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class Invocation:
    """A command to run: argv, the environment to add, a timeout, and which values are secret."""

    verb: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    secrets: tuple[str, ...] = ()

    def as_user(self, user: str) -> Invocation:
        """The same command run as `user` (runuser keeps the environment it is given)."""
        return replace(self, argv=("runuser", "-u", user, "--", *self.argv))

    def __repr__(self) -> str:  # never show the secret values
        return f"Invocation({self.verb!r}, argv={list(self.argv)!r}, env={sorted(self.env)!r})"


@dataclass(frozen=True)
class SiteStatus:
    """What `status` found."""

    bootstrap: bool
    db: bool
    version: str = ""
    profile: str = ""
    site_name: str = ""
    pending_updates: int | None = None  # None when the backend does not say
    schema: Mapping[str, int] = field(default_factory=dict)
    error: str = ""  # why it is not bootstrapped, when the backend says
    raw: Mapping[str, Any] = field(default_factory=dict)


class DrupalTool(ABC):
    """The verbs octopus runs on a site; see the module docstring."""

    platform: Platform
    php: str

    @staticmethod
    def for_platform(platform: Platform, *, php: str = "php",
                     d7tool: Path | None = None) -> DrupalTool:
        if platform.core == DRUPAL7:
            return D7Tool(platform, php=php, script=d7tool)
        if platform.core == DRUPAL:
            if platform.drush is None:
                raise UsageError(
                    f"{platform.root}: Drupal {platform.version} without vendor/bin/drush; "
                    f"add drush/drush to the project (composer require drush/drush)")
            return DrushTool(platform, php=php)
        raise UsageError(f"{platform.root} is not Drupal: there is nothing to install")

    @abstractmethod
    def install(self, *, uri: str, admin_password: str, profile: str = "standard",
                site_name: str = "", site_mail: str = "", admin_mail: str = "",
                admin_name: str = "admin", locale: str = "en",
                db: DatabaseCredentials | None = None) -> Invocation: ...

    @abstractmethod
    def status(self, *, uri: str) -> Invocation: ...

    @abstractmethod
    def cron(self, *, uri: str) -> Invocation: ...

    @abstractmethod
    def cache_rebuild(self, *, uri: str) -> Invocation: ...

    @abstractmethod
    def updatedb(self, *, uri: str) -> Invocation: ...

    @abstractmethod
    def user_login(self, *, uri: str) -> Invocation: ...

    @abstractmethod
    def maintenance(self, *, uri: str, on: bool) -> Invocation:
        """Drupal's own maintenance mode on or off (visitors get its 503 page)."""

    @abstractmethod
    def parse_status(self, result: Result) -> SiteStatus: ...

    @abstractmethod
    def parse_user_login(self, result: Result) -> str: ...

    @abstractmethod
    def parse_updatedb(self, result: Result) -> list[str]: ...

    def parse_install(self, result: Result) -> None:
        self._require_ok(result, "install")

    def parse_cron(self, result: Result) -> None:
        self._require_ok(result, "cron")

    def parse_cache_rebuild(self, result: Result) -> None:
        self._require_ok(result, "cache rebuild")

    def parse_maintenance(self, result: Result) -> None:
        self._require_ok(result, "maintenance mode")

    def _install_names(self, uri: str, admin_password: str, profile: str, site_name: str,
                       site_mail: str, admin_mail: str) -> tuple[str, str, str]:
        """What every backend checks before an install: a long enough admin password and a
        profile the platform offers; then the site's name, its mail and the admin's mail
        (the host and admin@host where not given)."""
        if len(admin_password) < 12:
            raise UsageError("the admin password must be 12 characters or more")
        if self.platform.profiles and profile not in self.platform.profiles:
            raise UsageError(f"install profile {profile!r} is not offered by "
                             f"{self.platform.root} (it offers "
                             f"{', '.join(self.platform.profiles)})")
        host = urlsplit(uri).hostname or ""
        mail = site_mail or f"admin@{host}"
        return site_name or host, mail, admin_mail or mail

    @abstractmethod
    def _require_ok(self, result: Result, what: str) -> dict[str, Any]: ...


# --------------------------------------------------------------------------- Drupal 7


class D7Tool(DrupalTool):
    """Drupal 7 through templates/drupal/d7tool.php (Drupal 7's own APIs)."""

    def __init__(self, platform: Platform, *, php: str = "php",
                 script: Path | None = None) -> None:
        self.platform = platform
        self.php = php
        self.script = script or templates_dir() / "drupal" / "d7tool.php"

    def _argv(self, uri: str, command: str, *options: str) -> tuple[str, ...]:
        return (self.php, str(self.script), f"--root={self.platform.docroot}",
                f"--uri={_check_uri(uri)}", command, *options)

    def install(self, *, uri: str, admin_password: str, profile: str = "standard",
                site_name: str = "", site_mail: str = "", admin_mail: str = "",
                admin_name: str = "admin", locale: str = "en",
                db: DatabaseCredentials | None = None) -> Invocation:
        name, mail, account_mail = self._install_names(uri, admin_password, profile,
                                                       site_name, site_mail, admin_mail)
        argv = self._argv(uri, "install", f"--profile={profile}", f"--locale={locale}",
                          f"--site-name={name}", f"--site-mail={mail}",
                          f"--account-name={admin_name}", f"--account-mail={account_mail}")
        return Invocation("install", argv, {ADMIN_PASS_ENV: admin_password},
                          timeout=INSTALL_TIMEOUT, secrets=(admin_password,))

    def status(self, *, uri: str) -> Invocation:
        return Invocation("status", self._argv(uri, "status"), timeout=120)

    def cron(self, *, uri: str) -> Invocation:
        return Invocation("cron", self._argv(uri, "cron"))

    def cache_rebuild(self, *, uri: str) -> Invocation:
        return Invocation("cache-clear", self._argv(uri, "cache-clear"))

    def updatedb(self, *, uri: str) -> Invocation:
        return Invocation("updatedb", self._argv(uri, "updatedb"), timeout=INSTALL_TIMEOUT)

    def user_login(self, *, uri: str) -> Invocation:
        return Invocation("user-login", self._argv(uri, "user-login"), timeout=120)

    def maintenance(self, *, uri: str, on: bool) -> Invocation:
        return Invocation("maintenance", self._argv(uri, "maintenance", f"--value={int(on)}"),
                          timeout=120)

    @staticmethod
    def result_data(result: Result) -> dict[str, Any] | None:
        """The JSON of d7tool.php's last result line, or None when it printed none."""
        for line in reversed(result.stdout.splitlines()):
            if line.startswith(MARKER):
                try:
                    data = json.loads(line[len(MARKER):])
                except ValueError:
                    return None
                return data if isinstance(data, dict) else None
        return None

    def _require_ok(self, result: Result, what: str) -> dict[str, Any]:
        data = self.result_data(result)
        if data is None:
            tail = result.stderr.strip().splitlines()[-1:] or [f"exit code {result.rc}"]
            raise DrupalToolError(f"Drupal 7 {what} failed: {_one_line(tail[0])}")
        if not data.get("ok") or not result.ok:
            raise DrupalToolError(
                f"Drupal 7 {what} failed: {_one_line(str(data.get('error') or 'no reason given'))}")
        return data

    def parse_status(self, result: Result) -> SiteStatus:
        data = self.result_data(result)
        if data is None:
            data = self._require_ok(result, "status")  # raises: no result line
        schema = data.get("schema") if isinstance(data.get("schema"), dict) else {}
        return SiteStatus(
            bootstrap=bool(data.get("bootstrap")), db=bool(data.get("db")),
            version=str(data.get("version", "")), profile=str(data.get("profile", "")),
            site_name=str(data.get("site_name", "")),
            pending_updates=int(data["pending_updates"]) if "pending_updates" in data else None,
            schema={str(k): int(v) for k, v in (schema or {}).items()},
            error=str(data.get("error", "")), raw=data)

    def parse_user_login(self, result: Result) -> str:
        return str(self._require_ok(result, "user-login")["url"])

    def parse_updatedb(self, result: Result) -> list[str]:
        return [str(name) for name in self._require_ok(result, "updatedb").get("ran", [])]


# --------------------------------------------------------------------------- Drupal 8+


class DrushTool(DrupalTool):
    """Drupal 8+ through the platform's own Drush."""

    def __init__(self, platform: Platform, *, php: str = "php") -> None:
        self.platform = platform
        self.php = php
        if platform.drush is None:
            raise UsageError(f"{platform.root}: no vendor/bin/drush")
        self.drush = platform.drush

    def _entry(self) -> tuple[str, ...]:
        """Drush's PHP entry point run by our PHP (vendor/bin/drush is a shell proxy that would
        pick whatever `php` comes first in PATH)."""
        vendor = self.drush.parent.parent
        for candidate in (vendor / "drush" / "drush" / "drush.php", vendor / "bin" / "drush.php"):
            if candidate.is_file():
                return (self.php, str(candidate))
        return (str(self.drush),)

    def _argv(self, uri: str, *words: str) -> tuple[str, ...]:
        return (*self._entry(), f"--root={self.platform.docroot}", f"--uri={_check_uri(uri)}",
                "--no-interaction", *words)

    def install(self, *, uri: str, admin_password: str, profile: str = "standard",
                site_name: str = "", site_mail: str = "", admin_mail: str = "",
                admin_name: str = "admin", locale: str = "en",
                db: DatabaseCredentials | None = None) -> Invocation:
        name, mail, account_mail = self._install_names(uri, admin_password, profile,
                                                       site_name, site_mail, admin_mail)
        host = urlsplit(uri).hostname or ""
        argv = self._argv(uri, "site:install", profile, "--yes", f"--locale={locale}",
                          f"--site-name={name}", f"--site-mail={mail}",
                          f"--account-name={admin_name}", f"--account-mail={account_mail}",
                          f"--sites-subdir={host}")
        env = {DRUSH_PASS_ENV: admin_password}
        secret_values: tuple[str, ...] = (admin_password,)
        if db is not None:
            env[DRUSH_DB_URL_ENV] = db_url(db)
            secret_values += (db.password, env[DRUSH_DB_URL_ENV])
        return Invocation("install", argv, env, timeout=INSTALL_TIMEOUT, secrets=secret_values)

    def status(self, *, uri: str) -> Invocation:
        return Invocation("status", self._argv(uri, "core:status", "--format=json"), timeout=120)

    def cron(self, *, uri: str) -> Invocation:
        return Invocation("cron", self._argv(uri, "core:cron"))

    def cache_rebuild(self, *, uri: str) -> Invocation:
        return Invocation("cache:rebuild", self._argv(uri, "cache:rebuild"))

    def updatedb(self, *, uri: str) -> Invocation:
        return Invocation("updatedb", self._argv(uri, "updatedb", "--yes"),
                          timeout=INSTALL_TIMEOUT)

    def user_login(self, *, uri: str) -> Invocation:
        return Invocation("user-login", self._argv(uri, "user:login", "--no-browser"),
                          timeout=120)

    def maintenance(self, *, uri: str, on: bool) -> Invocation:
        return Invocation("maintenance", self._argv(uri, "maint:set", str(int(on))),
                          timeout=120)

    def _require_ok(self, result: Result, what: str) -> dict[str, Any]:
        if result.ok:
            return {}
        raise DrupalToolError(f"drush {what} failed: {drush_error(result)}")

    def parse_status(self, result: Result) -> SiteStatus:
        self._require_ok(result, "status")
        data = _json_object(result.stdout)
        if data is None:
            raise DrupalToolError(f"drush status printed no JSON: {_one_line(result.output)}")
        return SiteStatus(
            bootstrap=str(data.get("bootstrap", "")).lower() == "successful",
            db=str(data.get("db-status", "")).lower() == "connected",
            version=str(data.get("drupal-version", "")),
            profile=str(data.get("install-profile", "")),
            site_name=str(data.get("site-name", data.get("site", ""))), raw=data)

    def parse_user_login(self, result: Result) -> str:
        self._require_ok(result, "user:login")
        for line in reversed(result.stdout.splitlines()):
            line = line.strip()
            if line.startswith(("http://", "https://")) and "/user/reset/" in line:
                return line
        raise DrupalToolError(f"drush user:login printed no link: {_one_line(result.output)}")

    def parse_updatedb(self, result: Result) -> list[str]:
        self._require_ok(result, "updatedb")
        ran = []
        for line in result.output.splitlines():
            words = line.split()
            # Drush logs "> [notice] Update started: system_update_10201".
            if "Update started:" in line and words:
                ran.append(words[-1])
        return ran


def drush_error(result: Result) -> str:
    """The line of Drush's output that says why it failed (its last [error] line)."""
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    for line in reversed(lines):
        if "[error]" in line or "Error:" in line or "Exception" in line:
            return _one_line(line.replace("[error]", "").strip())
    return _one_line(lines[-1]) if lines else f"exit code {result.rc}"


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in Drush's stdout (it may be preceded by warnings)."""
    start = text.find("{")
    while start != -1:
        try:
            data = json.loads(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
            continue
        return data if isinstance(data, dict) else None
    return None
