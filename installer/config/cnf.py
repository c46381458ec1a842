"""BOA's `.barracuda.cnf` format: `_KEY="value"`, `_KEY='value'` or `_KEY=value` lines,
`#` comments and blank lines. The file is parsed, never executed: anything a shell would
expand (`$VAR`, `$(...)`, backticks) is refused instead of being run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from installer.errors import ConfigError

KEY_RE = re.compile(r"_[A-Z0-9][A-Z0-9_]*")
_LINE_RE = re.compile(r"(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<rest>.*)")


@dataclass(frozen=True)
class Entry:
    key: str
    value: str
    line: int


@dataclass(frozen=True)
class CnfFile:
    path: str
    entries: tuple[Entry, ...]

    def get(self, key: str) -> Entry | None:
        for entry in self.entries:
            if entry.key == key:
                return entry
        return None

    def keys(self) -> list[str]:
        return [entry.key for entry in self.entries]


def _unquote(rest: str, path: str, lineno: int, key: str) -> str:
    """The value of a `KEY=rest` line, with quoting and a trailing comment handled."""
    rest = rest.rstrip()
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        end = rest.find(quote, 1)
        if end < 0:
            raise ConfigError(f"missing closing {quote}", path=path, line=lineno, key=key)
        value, tail = rest[1:end], rest[end + 1 :].strip()
        if tail and not tail.startswith("#"):
            raise ConfigError(
                f"unexpected text after the closing quote: {tail!r}",
                path=path, line=lineno, key=key,
            )
        if quote == "'":
            return value
    else:
        value = re.split(r"\s+#", rest, maxsplit=1)[0].strip()
        if re.search(r"\s", value):
            raise ConfigError(
                f"value {value!r} has spaces: quote it, as in {key}=\"{value}\"",
                path=path, line=lineno, key=key,
            )
        if value[:1] in ("'", '"'):
            raise ConfigError("unbalanced quotes", path=path, line=lineno, key=key)
    if "`" in value or "$" in value:
        raise ConfigError(
            f"value {value!r} uses shell expansion ($ or `); this file is read as data, "
            "never run: write the literal value",
            path=path, line=lineno, key=key,
        )
    if "\\" in value:
        raise ConfigError(
            f"value {value!r} has a backslash; write the literal value without escapes",
            path=path, line=lineno, key=key,
        )
    return value


def parse_text(text: str, path: str) -> CnfFile:
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE_RE.fullmatch(line)
        if not match:
            raise ConfigError(
                f"cannot read {line[:60]!r}: expected _KEY=\"value\", a # comment or a blank line",
                path=path, line=lineno,
            )
        key = match["key"]
        if not KEY_RE.fullmatch(key):
            raise ConfigError(
                "keys are upper case and start with an underscore, as _MY_EMAIL",
                path=path, line=lineno, key=key,
            )
        if key in seen:
            raise ConfigError(
                f"set twice (first at line {seen[key]}); keep one", path=path, line=lineno, key=key
            )
        seen[key] = lineno
        entries.append(Entry(key, _unquote(match["rest"], path, lineno, key), lineno))
    return CnfFile(path, tuple(entries))


def read(path: Path) -> CnfFile:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", path=str(path)) from exc
    return parse_text(text, str(path))


def quote(value: str) -> str:
    """A value as it is written back: double quotes, as BOA writes its files."""
    return f'"{value}"'


def render_line(key: str, value: str) -> str:
    return f"{key}={quote(value)}"
