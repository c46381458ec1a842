"""What a platform tree is: Drupal 7 (Pressflow included), Drupal 8+ or plain PHP.

`detect(path)` reads a tree and returns a frozen `Platform`; it only reads files, never runs
PHP. The facts come from the tree's structure and core's own constants:

* Drupal 7: `includes/bootstrap.inc` defines VERSION (`define('VERSION', '7.101')`); the
  Pressflow fork is told by its PRESSFLOW_SETTINGS handling in the same file.
* Drupal 8+: `core/lib/Drupal.php` holds `const VERSION = '11.2.8'`.
* A composer project keeps core under a docroot (`web/`, `docroot/`, or what
  composer.json's `extra.drupal-scaffold.locations.web-root` names) and `vendor/` beside it;
  its Drush is `vendor/bin/drush` at the project root.
* Minimum PHP: the highest of composer's `vendor/composer/platform_check.php`
  (`PHP_VERSION_ID >= 80300`), composer.lock's `platform.php`, and core's own minimum
  (`DRUPAL_MINIMUM_PHP` for 7, `Drupal::MINIMUM_PHP` for 8+).

octopus: call `detect()` on `platform add` and `platform verify`, keep the fields in the
platform's record (`Platform.as_record()`), serve `Platform.docroot`, and call
`require_php(platform, instance_php, instance=NAME)` before accepting the platform.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from installer.errors import UsageError

# The core families; the vhost kinds octopus renders are named after them.
DRUPAL7 = "drupal7"
DRUPAL = "drupal"  # Drupal 8 and later
PHP = "php"  # anything else with PHP files

DOCROOT_CANDIDATES = ("web", "docroot")


class PlatformError(UsageError):
    """A platform tree that cannot be used as it is (one line, naming the path)."""


@dataclass(frozen=True)
class Platform:
    """What a platform tree is. Paths are absolute; `docroot` is what the vhost serves."""

    root: Path
    core: str  # DRUPAL7, DRUPAL or PHP
    version: str  # "7.101", "11.2.8"; "" for plain PHP
    major: int  # 7, 11; 0 for plain PHP
    docroot: Path
    profiles: tuple[str, ...] = ()
    drush: Path | None = None  # a Drush the codebase ships (vendor/bin/drush)
    php_min: str = ""  # "8.3.0": the oldest PHP the codebase runs on ("" when unknown)
    php_min_source: str = ""  # the file that says so, relative to root
    fork: str = ""  # "pressflow" for the Pressflow fork of Drupal 7
    redis_module: Path | None = None  # the redis contrib module's directory, if shipped

    @property
    def is_drupal(self) -> bool:
        return self.core in (DRUPAL7, DRUPAL)

    @property
    def docroot_rel(self) -> str:
        """The docroot relative to the root: "" (the root itself), "web", "docroot"."""
        rel = self.docroot.relative_to(self.root).as_posix()
        return "" if rel == "." else rel

    def site_dir(self, domain: str) -> Path:
        return self.docroot / "sites" / domain

    def describe(self) -> str:
        """One line for `platform list`: 'Drupal 7.101 (pressflow), docroot ., PHP >= 5.3.3'."""
        if self.core == PHP:
            what = "PHP"
        else:
            what = f"Drupal {self.version}" + (f" ({self.fork})" if self.fork else "")
        parts = [what, f"docroot {self.docroot_rel or '.'}"]
        if self.profiles:
            parts.append("profiles " + ",".join(self.profiles))
        if self.drush:
            parts.append("drush")
        if self.php_min:
            parts.append(f"PHP >= {self.php_min}")
        return ", ".join(parts)

    def as_record(self) -> dict[str, Any]:
        """Plain data for octopus's state file (paths as strings)."""
        return {
            "core": self.core,
            "version": self.version,
            "major": self.major,
            "docroot": self.docroot_rel,
            "profiles": list(self.profiles),
            "drush": str(self.drush) if self.drush else "",
            "php_min": self.php_min,
            "php_min_source": self.php_min_source,
            "fork": self.fork,
            "redis_module": str(self.redis_module) if self.redis_module else "",
        }


# --------------------------------------------------------------------------- versions


def version_tuple(version: str) -> tuple[int, ...]:
    """'8.3.0' -> (8, 3, 0); '8.2' -> (8, 2, 0); trailing text ignored ('8.4.11-1' -> 8.4.11)."""
    match = re.match(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    if not match:
        raise ValueError(f"not a version: {version!r}")
    return tuple(int(part or 0) for part in match.groups())


def php_satisfies(php_min: str, php_version: str) -> bool:
    """True when PHP `php_version` is at least `php_min` (an empty minimum is no constraint)."""
    return not php_min or version_tuple(php_version) >= version_tuple(php_min)


def require_php(platform: Platform, php_version: str, *, instance: str = "") -> None:
    """Refuse, in one line naming both versions, a codebase that needs a newer PHP."""
    if php_satisfies(platform.php_min, php_version):
        return
    who = f"instance {instance} runs" if instance else "the instance runs"
    raise PlatformError(
        f"{platform.root} needs PHP {platform.php_min} or later "
        f"({platform.php_min_source}); {who} PHP {php_version}")


# --------------------------------------------------------------------------- reading files


def _read(path: Path, limit: int = 400_000) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return ""


_D7_VERSION = re.compile(r"""define\(\s*['"]VERSION['"]\s*,\s*['"]([^'"]+)['"]\s*\)""")
_D7_MIN_PHP = re.compile(r"""define\(\s*['"]DRUPAL_MINIMUM_PHP['"]\s*,\s*['"]([^'"]+)['"]""")
_D8_VERSION = re.compile(r"""const\s+VERSION\s*=\s*['"]([^'"]+)['"]""")
_D8_MIN_PHP = re.compile(r"""const\s+MINIMUM_PHP\s*=\s*['"]([^'"]+)['"]""")
_PLATFORM_CHECK = re.compile(r"PHP_VERSION_ID\s*>=\s*(\d+)")


def _core_of(docroot: Path) -> tuple[str, str, str, str] | None:
    """(core, version, fork, core minimum PHP) of a docroot, or None if it holds no Drupal."""
    drupal_php = docroot / "core" / "lib" / "Drupal.php"
    if drupal_php.is_file():
        text = _read(drupal_php)
        version = _D8_VERSION.search(text)
        minimum = _D8_MIN_PHP.search(text)
        # The structure says Drupal 8 or later even where the version cannot be read (a
        # trimmed or patched core): its routes are Drupal's whatever the number.
        return DRUPAL, version.group(1) if version else "", "", (
            minimum.group(1) if minimum else "")
    bootstrap = docroot / "includes" / "bootstrap.inc"
    if bootstrap.is_file():
        text = _read(bootstrap)
        version = _D7_VERSION.search(text)
        minimum = _D7_MIN_PHP.search(text)
        # Drupal 7 by its structure, unless the version says another major (6 has the file).
        if version is None or version.group(1).startswith("7."):
            fork = "pressflow" if "PRESSFLOW_SETTINGS" in text else ""
            return (DRUPAL7, version.group(1) if version else "", fork,
                    minimum.group(1) if minimum else "")
    return None


def _composer_web_root(root: Path) -> Path | None:
    try:
        data = json.loads(_read(root / "composer.json") or "{}")
    except ValueError:
        return None
    web_root = (((data.get("extra") or {}).get("drupal-scaffold") or {}).get("locations")
                or {}).get("web-root") if isinstance(data, dict) else None
    if not isinstance(web_root, str) or not web_root.strip("./"):
        return None
    candidate = (root / web_root.strip("/")).resolve()
    if root.resolve() not in candidate.parents or not candidate.is_dir():
        return None
    return root / web_root.strip("/").rstrip("/")


def find_docroot(root: Path) -> Path:
    """The directory a vhost serves: the root, or `web/`/`docroot/` of a composer project."""
    if _core_of(root):
        return root
    candidates = []
    if scaffold := _composer_web_root(root):
        candidates.append(scaffold)
    candidates += [root / name for name in DOCROOT_CANDIDATES]
    for candidate in candidates:
        if candidate.is_dir() and _core_of(candidate):
            return candidate
    if (root / "index.php").is_file():
        return root
    for candidate in candidates:
        if (candidate / "index.php").is_file():
            return candidate
    return root


def _php_minimum(root: Path, core_min: str) -> tuple[str, str]:
    """The highest of the codebase's stated PHP minimums, with the file that states it."""
    found: list[tuple[tuple[int, ...], str, str]] = []
    check = root / "vendor" / "composer" / "platform_check.php"
    ids = [int(v) for v in _PLATFORM_CHECK.findall(_read(check))]
    if ids:
        best = max(ids)
        version = f"{best // 10000}.{best // 100 % 100}.{best % 100}"
        found.append((version_tuple(version), version, "vendor/composer/platform_check.php"))
    lock = _read(root / "composer.lock", limit=20_000_000)
    if lock:
        try:
            platform = json.loads(lock).get("platform") or {}
        except (ValueError, AttributeError):
            platform = {}
        constraint = platform.get("php") if isinstance(platform, dict) else None
        if isinstance(constraint, str) and (m := re.search(r"(\d+\.\d+(?:\.\d+)?)", constraint)):
            found.append((version_tuple(m.group(1)), m.group(1), "composer.lock platform.php"))
    if core_min:
        found.append((version_tuple(core_min), core_min, "Drupal core's minimum"))
    if not found:
        return "", ""
    _, version, source = max(found, key=lambda item: item[0])
    return version, source


# --------------------------------------------------------------------------- profiles


_INFO_LINE = re.compile(r"""^\s*([A-Za-z0-9_.\-]+)\s*(\[[^\]]*\])?\s*=\s*(.*?)\s*$""")


def parse_info(text: str) -> dict[str, str]:
    """The scalar keys of a Drupal 7 .info file (arrays such as dependencies[] are skipped)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith(";"):
            continue
        match = _INFO_LINE.match(line)
        if not match or match.group(2) is not None:
            continue
        value = match.group(3)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[match.group(1)] = value
    return values


def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _d7_profiles(docroot: Path) -> tuple[str, ...]:
    names = []
    for info in sorted((docroot / "profiles").glob("*/*.info")):
        if info.stem != info.parent.name:
            continue
        if not _truthy(parse_info(_read(info)).get("hidden", "")):
            names.append(info.stem)
    return tuple(names)


def _d8_profiles(docroot: Path) -> tuple[str, ...]:
    names = set()
    # core/profiles/NAME, core/profiles/tests/NAME (hidden ones), profiles/NAME,
    # profiles/contrib/NAME and profiles/custom/NAME of a composer project.
    patterns = ["core/profiles/*/*.info.yml", "core/profiles/*/*/*.info.yml",
                "profiles/*/*.info.yml", "profiles/*/*/*.info.yml"]
    for pattern in patterns:
        for info in docroot.glob(pattern):
            if info.name != f"{info.parent.name}.info.yml":
                continue
            try:
                data = yaml.safe_load(_read(info))
            except yaml.YAMLError:
                continue
            if not isinstance(data, dict) or data.get("type") != "profile":
                continue
            if not _truthy(data.get("hidden", False)):
                names.add(info.parent.name)
    return tuple(sorted(names))


def d7_old_short_name(platform: Platform, profile: str) -> str:
    """A Drupal 7 profile's `old_short_name` (its Drupal 6 name, for migrations), or ""."""
    info = platform.docroot / "profiles" / profile / f"{profile}.info"
    return parse_info(_read(info)).get("old_short_name", "")


# --------------------------------------------------------------------------- modules


def _find_module(docroot: Path, name: str, info: str) -> Path | None:
    """The directory of contrib module `name` (found by its info file), if the tree has it."""
    bases = ["sites/all/modules", "modules", "profiles/*/modules"]
    for base in bases:
        for depth in ("", "*/", "*/*/"):
            for path in sorted(docroot.glob(f"{base}/{depth}{name}/{name}{info}")):
                return path.parent
    return None


# --------------------------------------------------------------------------- detect


def detect(path: Path) -> Platform:
    """Read the platform tree at `path` (nothing is run, nothing is written)."""
    root = Path(path)
    if not root.is_dir():
        raise PlatformError(f"{root}: not a directory")
    root = root.absolute()
    docroot = find_docroot(root)
    core = _core_of(docroot)
    if core is None:
        if not any(docroot.glob("*.php")):
            raise PlatformError(
                f"{root}: no index.php front controller, nor includes/bootstrap.inc or "
                "core/lib/Drupal.php, at its top or in web/ or docroot/: neither Drupal nor a "
                "PHP application")
        php_min, source = _php_minimum(root, "")
        shipped = root / "vendor" / "bin" / "drush"
        return Platform(root=root, core=PHP, version="", major=0, docroot=docroot,
                        php_min=php_min, php_min_source=source,
                        drush=shipped if shipped.is_file() else None)
    family, version, fork, core_min = core
    php_min, source = _php_minimum(root, core_min)
    if family == DRUPAL7:
        profiles = _d7_profiles(docroot)
        redis = _find_module(docroot, "redis", ".info")
    else:
        profiles = _d8_profiles(docroot)
        redis = _find_module(docroot, "redis", ".info.yml")
    drush = next((candidate for candidate in (root / "vendor" / "bin" / "drush",
                                              docroot / "vendor" / "bin" / "drush")
                  if candidate.is_file()), None)
    # An unreadable version counts as the family's first major (7, or 8 for Drupal 8+).
    major = version_tuple(version)[0] if version else (7 if family == DRUPAL7 else 8)
    return Platform(root=root, core=family, version=version, major=major,
                    docroot=docroot, profiles=profiles, drush=drush, php_min=php_min,
                    php_min_source=source, fork=fork, redis_module=redis)
