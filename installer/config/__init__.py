"""Loading the operator's configuration, and writing its defaults.

The file is BOA's format (installer/config/cnf.py), checked against the schema in
profiles/config.yml (installer/config/schema.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from installer import __version__
from installer.config import cnf
from installer.config.schema import Config, default_raw, schema, validate
from installer.data import load_profile
from installer.errors import ConfigError

DEFAULT_PATH = "/root/.barracuda.cnf"
ENV_VAR = "BARRACUDA_CONFIG"

__all__ = ["Config", "default_text", "ignored_warning", "load", "missing_keys", "resolve_path",
           "with_missing_keys"]


def resolve_path(option: str | None, root: Path) -> Path:
    """--config wins, then $BARRACUDA_CONFIG, then /root/.barracuda.cnf under --root.

    Only the default file may be missing (`barracuda install` creates it on a new machine):
    a path given on purpose that names no file is a typo, and taking the defaults for it
    would retune a running server, so it is a ConfigError."""
    default = root / DEFAULT_PATH.lstrip("/")
    if option:
        path, given = Path(option), "--config"
    elif env := os.environ.get(ENV_VAR):
        path, given = Path(env), f"${ENV_VAR}"
    else:
        return default
    if not os.path.lexists(path) and os.path.abspath(path) != os.path.abspath(default):
        raise ConfigError(
            f"no such file (given by {given}); only the default {DEFAULT_PATH} is created "
            "when missing: check the path", path=str(path))
    return path


def ignored_warning(config: Config, tool: str) -> str | None:
    """The one warning about BOA keys present in `config` that `tool` does not use."""
    if not config.ignored:
        return None
    return f"{config.path}: BOA keys {tool} does not use (ignored): {' '.join(config.ignored)}"


def load(path: Path, profile: str = "config") -> Config:
    """The effective configuration: the file's values over the defaults.

    A missing file is not an error: the defaults apply (install creates the file)."""
    try:
        parsed = cnf.read(path)
    except FileNotFoundError:
        return validate(cnf.CnfFile(str(path), ()), exists=False, profile=profile)
    return validate(parsed, profile=profile)


def _block(keys: list[str], profile: str, values: Mapping[str, str]) -> str:
    spec = schema(profile)
    lines: list[str] = []
    for key in keys:
        lines.append(f"# {spec[key].get('help', key)}")
        lines.append(cnf.render_line(key, values.get(key, default_raw(key, profile))))
    return "\n".join(lines) + "\n"


_HEADER = (
    "# barracuda configuration, in BOA's .barracuda.cnf format: _KEY=\"value\" lines.\n"
    "# It is read as data, never run. `barracuda config show` lists every key with its\n"
    "# effective value; `barracuda config check` validates this file.\n"
)


def default_text(profile: str = "config", values: Mapping[str, str] | None = None) -> str:
    """A new file of `profile`: its header (the profile's `header`, if any), then every key
    with its help and its default, or the value given in `values`."""
    header = str(load_profile(profile).get("header", _HEADER)).rstrip("\n") + "\n\n"
    return header + _block(list(schema(profile)), profile, values or {})


def missing_keys(text: str, path: str, profile: str = "config") -> list[str]:
    present = set(cnf.parse_text(text, path).keys())
    return [key for key in schema(profile) if key not in present]


def with_missing_keys(text: str, path: str, profile: str = "config") -> str:
    """`text` with the keys a newer release added appended with their defaults; the
    operator's lines are kept byte for byte."""
    missing = missing_keys(text, path, profile)
    if not missing:
        return text
    sep = "" if text.endswith("\n") or not text else "\n"
    return (
        f"{text}{sep}\n# Added by barracuda {__version__}: new keys with their defaults.\n"
        + _block(missing, profile, {})
    )
