"""The typed schema of BOA-format files: .barracuda.cnf (profiles/config.yml) and the other
files in the same format (e.g. profiles/octopus.yml for /root/.oN.octopus.cnf). Keys,
defaults and allowed values are data in the profile; this module only knows how each type
is read and checked."""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from installer.config import xtras
from installer.config.cnf import CnfFile, shell_syntax
from installer.config.text import shown
from installer.data import load_profile
from installer.errors import ConfigError, DataError


class BadValue(Exception):
    """A value that does not fit its type: the message says what is allowed, or (`whole`)
    is the whole explanation."""

    def __init__(self, message: str, *, whole: bool = False) -> None:
        super().__init__(message)
        self.whole = whole


@dataclass(frozen=True)
class Setting:
    key: str
    value: Any
    raw: str
    source: str  # "default", or "path:line" where the operator set it
    line: int = 0


@dataclass(frozen=True)
class Config:
    path: str
    exists: bool
    settings: Mapping[str, Setting]
    ignored: tuple[str, ...] = ()  # BOA keys present in the file that barracuda does not use
    profile: str = "config"  # the schema it was checked against (profiles/<profile>.yml)

    def __getitem__(self, key: str) -> Any:
        return self.settings[key].value

    def error(self, key: str, message: str) -> ConfigError:
        """An error about `key`, pointing at the line that set it (or at the file)."""
        setting = self.settings.get(key)
        line = setting.line if setting else 0
        return ConfigError(message, path=self.path, line=line, key=key)


def _range_text(spec: Mapping[str, Any]) -> str:
    return f"from {spec['min']} to {spec['max']}"


# More digits than any limit in the profiles has: refused before int() is asked to read
# them (Python refuses integers of more than 4300 digits with a ValueError).
_MAX_DIGITS = 18


def _whole(raw: str) -> int | None:
    if not re.fullmatch(r"[0-9]+", raw):
        return None
    digits = raw.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10 ** _MAX_DIGITS


def _int(raw: str, spec: Mapping[str, Any]) -> int:
    number = _whole(raw)
    if number is None or not spec["min"] <= number <= spec["max"]:
        raise BadValue(f"a whole number {_range_text(spec)}")
    return number


def _auto_int(raw: str, spec: Mapping[str, Any]) -> int | None:
    if raw.upper() == "AUTO":
        return None
    try:
        return _int(raw, spec)
    except BadValue:
        raise BadValue(f"AUTO or a whole number {_range_text(spec)}") from None


def _float(raw: str, spec: Mapping[str, Any]) -> float:
    if (len(raw) > 2 * _MAX_DIGITS or not re.fullmatch(r"[0-9]+(\.[0-9]+)?", raw)
            or not spec["min"] <= float(raw) <= spec["max"]):
        raise BadValue(f"a number {_range_text(spec)}")
    return float(raw)


def _yesno(raw: str, spec: Mapping[str, Any]) -> bool:
    if raw.upper() not in ("YES", "NO"):
        raise BadValue("YES or NO")
    return raw.upper() == "YES"


def _enum(raw: str, spec: Mapping[str, Any]) -> str:
    allowed = [str(item) for item in spec["allowed"]]
    for item in allowed:
        if raw.lower() == item.lower():
            return item
    raise BadValue("one of " + ", ".join(allowed))


# An address a mail command gets as an argument: a local part of letters, digits and
# . _ % + - (not starting with - or .), and a host name (root@localhost works too). No
# quotes, pipes, spaces or control characters; at most 254 characters (RFC 5321), 64
# before the @.
_EMAIL = re.compile(
    r"(?=.{3,254}$)(?![.-])[A-Za-z0-9._%+-]{1,64}"
    r"@(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")


def _email(raw: str, spec: Mapping[str, Any]) -> str:
    if not _EMAIL.fullmatch(raw):
        raise BadValue("an email address such as admin@example.com (up to 64 letters, "
                       "digits and . _ % + - before the @, not starting with - or .; a host "
                       "name after it; at most 254 characters in all)")
    return raw


def _string(raw: str, spec: Mapping[str, Any]) -> str:
    pattern = spec.get("pattern")
    if pattern and not re.fullmatch(pattern, raw):
        raise BadValue(spec.get("expect", f"text matching {pattern}"))
    return raw


def _php_version(raw: str, spec: Mapping[str, Any]) -> str:
    known = [str(v) for v in load_profile("config")["php_versions"]]
    if raw.upper() == "AUTO":
        return "AUTO"
    if raw not in known:
        raise BadValue("AUTO or one of " + " ".join(known))
    return raw


def _php_versions(raw: str, spec: Mapping[str, Any]) -> list[str]:
    known = [str(v) for v in load_profile("config")["php_versions"]]
    versions = [v for v in re.split(r"[\s,]+", raw) if v]
    for version in versions:
        if version not in known:
            raise BadValue(f"PHP versions from {' '.join(known)} (got {version[:20]!r})")
    return list(dict.fromkeys(versions))


def _xtras(raw: str, spec: Mapping[str, Any]) -> str:
    problem = xtras.check_tokens(raw)
    if problem:
        raise BadValue(problem, whole=True)
    return " ".join(xtras.tokens(raw))


def _password_length(raw: str, spec: Mapping[str, Any]) -> int:
    if raw.upper() == "YES":
        return 64
    if raw.upper() == "NO":
        return 32
    number = _whole(raw)
    if number is not None and 32 <= number <= 128:
        return number
    raise BadValue("YES (64 characters), NO (32) or a number from 32 to 128")


_TYPES: dict[str, Callable[[str, Mapping[str, Any]], Any]] = {
    "int": _int,
    "auto_int": _auto_int,
    "float": _float,
    "yesno": _yesno,
    "enum": _enum,
    "email": _email,
    "string": _string,
    "php_version": _php_version,
    "php_versions": _php_versions,
    "xtras": _xtras,
    "password_length": _password_length,
}

_EMPTY: dict[str, Any] = {"php_versions": [], "int": None, "auto_int": None, "float": None}


def schema(profile: str = "config") -> dict[str, dict[str, Any]]:
    keys: dict[str, dict[str, Any]] = load_profile(profile)["keys"]
    return keys


def boa_only_keys(profile: str = "config") -> set[str]:
    """BOA keys accepted (and ignored) in a file of this profile: the profile's own
    `boa_keys` list, or the profile named by `boa_keys_profile` (config -> boa_keys.yml)."""
    data = load_profile(profile)
    if "boa_keys" in data:
        return set(data["boa_keys"])
    source = data.get("boa_keys_profile", "boa_keys" if profile == "config" else None)
    return set(load_profile(source)["keys"]) if source else set()


def convert(key: str, raw: str, profile: str = "config") -> Any:
    """The typed value of `raw` for `key`; raises BadValue when it does not fit."""
    spec = schema(profile)[key]
    kind = spec["type"]
    if raw == "":
        if spec.get("allow_empty"):
            return _EMPTY.get(kind, "")
        raise BadValue("a value (this key may not be empty)")
    return _TYPES[kind](raw, spec)


def default_raw(key: str, profile: str = "config") -> str:
    default = schema(profile)[key]["default"]
    return str(default) if default is not None else ""


def _check_rules(config: Config) -> None:
    for rule in load_profile(config.profile).get("rules", []):
        if "together" in rule:
            keys = rule["together"]
            set_keys = [k for k in keys if config.settings[k].raw != ""]
            if set_keys and len(set_keys) != len(keys):
                missing = [k for k in keys if k not in set_keys]
                raise config.error(
                    set_keys[0], f"{rule['message']}: set {' '.join(missing)} too, or clear it"
                )
        elif "ascending" in rule:
            keys = rule["ascending"]
            for low, high in itertools.pairwise(keys):
                if config[low] >= config[high]:
                    raise config.error(
                        high,
                        f"{rule['message']}: {high}={config.settings[high].raw} must be greater "
                        f"than {low}={config.settings[low].raw}",
                    )
        else:
            raise DataError(f"profiles/{config.profile}.yml: unknown rule {rule!r}")


def validate(cnf: CnfFile, *, exists: bool = True, profile: str = "config") -> Config:
    """Check every line of a parsed file against the schema of `profile` and return the
    effective config.

    Raises ConfigError naming file:line, the key, the bad value and what is allowed."""
    spec = schema(profile)
    boa_only = boa_only_keys(profile)
    settings: dict[str, Setting] = {}
    ignored: list[str] = []
    for entry in cnf.entries:
        if entry.key in boa_only:
            ignored.append(entry.key)
            continue
        if entry.key not in spec:
            hint = difflib.get_close_matches(entry.key, [*spec, *boa_only], n=1, cutoff=0.7)
            suggestion = f"; did you mean {hint[0]}?" if hint else ""
            raise ConfigError(
                f"unknown key{suggestion} (`barracuda config show` lists the keys)",
                path=cnf.path, line=entry.line, key=entry.key,
            )
        if "$" in entry.value or "`" in entry.value:  # single-quoted: literal, still refused
            raise shell_syntax(entry.value, cnf.path, entry.line, entry.key)
        try:
            value = convert(entry.key, entry.value, profile)
        except BadValue as bad:
            raise ConfigError(
                str(bad) if bad.whole else f"bad value {shown(entry.value)}: expected {bad}",
                path=cnf.path, line=entry.line, key=entry.key,
            ) from None
        settings[entry.key] = Setting(
            entry.key, value, entry.value, f"{cnf.path}:{entry.line}", entry.line
        )
    for key in spec:
        if key not in settings:
            raw = default_raw(key, profile)
            try:
                value = convert(key, raw, profile)
            except BadValue as bad:
                raise DataError(f"profiles/{profile}.yml: default of {key} is bad: {bad}") from None
            settings[key] = Setting(key, value, raw, "default")
    config = Config(cnf.path, exists, settings, tuple(ignored), profile)
    _check_rules(config)
    return config
