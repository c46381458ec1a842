"""_XTRAS_LIST: whole-token shortcodes checked against profiles/xtras.yml."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from installer.config.text import shown
from installer.data import load_profile


@dataclass(frozen=True)
class XtraSelection:
    codes: tuple[str, ...]  # what will be installed on this distro, in registry order
    warnings: tuple[str, ...]  # deprecated or unavailable codes that are skipped

    def packages(self, release: str) -> list[str]:
        registry = _registry()
        names: list[str] = []
        for code in self.codes:
            for name in registry[code].get("packages", {}).get(release, []):
                if name not in names:
                    names.append(name)
        return names


def _registry() -> dict[str, dict[str, Any]]:
    codes: dict[str, dict[str, Any]] = load_profile("xtras")["codes"]
    return codes


def tokens(raw: str) -> list[str]:
    return [token for token in re.split(r"[\s,]+", raw.strip()) if token]


def check_tokens(raw: str) -> str | None:
    """None when every token is a known code (or ALL); else what is wrong, in one phrase."""
    registry = _registry()
    for token in tokens(raw):
        if token == "ALL" or token in registry:
            continue
        hint = difflib.get_close_matches(token.upper(), [*registry, "ALL"], n=1, cutoff=0.5)
        known = " ".join(sorted(registry))
        suggestion = f"did you mean {hint[0]}? " if hint else ""
        return (f"bad token {shown(token, 20)} in {shown(raw.strip())}: {suggestion}"
                f"allowed: ALL {known}")
    return None


def select(raw: str, release: str) -> XtraSelection:
    """What a valid _XTRAS_LIST installs on `release`, and warnings for what it skips."""
    registry = _registry()
    wanted: list[str] = []
    explicit: set[str] = set()
    for token in tokens(raw):
        if token == "ALL":
            wanted += [code for code, spec in registry.items() if spec.get("in_all")]
        else:
            wanted.append(token)
            explicit.add(token)
    chosen: list[str] = []
    warnings: list[str] = []
    for code in dict.fromkeys(wanted):
        spec = registry[code]
        status = spec.get("status", "supported")
        if status == "deprecated":
            instead = spec.get("replacement")
            hint = f"use {instead} instead" if instead else "no replacement"
            warnings.append(
                f"{code} ({spec['meaning']}) is deprecated, skipped: {spec['why']}; {hint}"
            )
        elif status == "unavailable" or release not in spec.get("packages", {}):
            if code in explicit:
                why = spec.get("why", f"not packaged for {release}")
                warnings.append(f"{code} ({spec['meaning']}) is not available here, skipped: {why}")
        else:
            chosen.append(code)
    order = list(registry)
    return XtraSelection(tuple(sorted(chosen, key=order.index)), tuple(warnings))
