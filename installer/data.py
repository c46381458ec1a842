"""Where the shipped data lives (profiles/ and templates/) and how it is loaded.

A checkout (or an editable install) reads the top-level folders of the repository; an
installed copy reads <prefix>/share/barracuda, where pyproject.toml puts them.
`BARRACUDA_DATA` overrides both (tests use it).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from installer.errors import DataError


@functools.cache
def data_dir() -> Path:
    candidates = []
    if env := os.environ.get("BARRACUDA_DATA"):
        candidates.append(Path(env))
    candidates.append(Path(__file__).resolve().parent.parent)
    candidates.append(Path(sys.prefix) / "share" / "barracuda")
    for candidate in candidates:
        if (candidate / "profiles" / "config.yml").is_file():
            return candidate
    raise DataError(f"cannot find profiles/config.yml in any of {', '.join(map(str, candidates))}")


def profiles_dir() -> Path:
    return data_dir() / "profiles"


def templates_dir() -> Path:
    return data_dir() / "templates"


# libyaml's parser when PyYAML has it (its wheels do): the same safe loading, about ten times
# faster than the pure-Python one, which was a third of a no-op converge's time.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: Any) -> Any:
    """yaml.safe_load with the fastest safe loader: `text` is a str or an open file."""
    return yaml.load(text, Loader=SAFE_LOADER)


@functools.cache
def load_profile(name: str) -> dict[str, Any]:
    """Load profiles/<name>.yml as a mapping; a broken profile is a DataError naming the file."""
    path = profiles_dir() / f"{name}.yml"
    try:
        with path.open(encoding="utf-8") as handle:
            loaded = parse_yaml(handle)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: missing profile") from exc
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(loaded, dict):
        raise DataError(f"{path}: expected a mapping at the top level")
    return loaded
