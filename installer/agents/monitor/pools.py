"""PHP-FPM pools, discovered from the pool files (pool.d/*.conf), never listed: a pool an
octopus instance adds later is found at the next run and pinged like the master's."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pool:
    name: str
    listen: str  # a unix socket path, or [host:]port
    ping_path: str = ""
    ping_response: str = "pong"
    source: str = ""

    @property
    def address(self) -> str:
        if self.listen.startswith("/"):
            return self.listen
        return self.listen if ":" in self.listen else f"127.0.0.1:{self.listen}"


def _value(raw: str, pool: str) -> str:
    value = raw.strip()
    if value[:1] in ("'", '"') and value.find(value[0], 1) > 0:
        value = value[1:value.find(value[0], 1)]
    else:
        value = value.split(";", 1)[0].strip()
    return value.replace("$pool", pool)


def parse_pools(text: str, source: str = "") -> list[Pool]:
    """The pools of one FPM pool file (sections with a `listen`)."""
    sections: dict[str, dict[str, str]] = {}
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in ";#":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1].strip()
            sections.setdefault(current, {})
            continue
        key, sep, raw = stripped.partition("=")
        if sep and current and current != "global":
            sections[current][key.strip()] = _value(raw, current)
    return [
        Pool(name, keys["listen"], keys.get("ping.path", ""),
             keys.get("ping.response", "pong") or "pong", source)
        for name, keys in sections.items() if keys.get("listen")
    ]


def discover(pattern: str) -> list[Pool]:
    pools: list[Pool] = []
    for path in sorted(glob.glob(pattern)):
        try:
            pools += parse_pools(Path(path).read_text(encoding="utf-8", errors="replace"), path)
        except OSError:
            continue
    return pools
