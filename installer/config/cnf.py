"""BOA's `.barracuda.cnf` format: `_KEY="value"`, `_KEY='value'` or `_KEY=value` lines,
`#` comments and blank lines. The file is parsed, never executed: anything a shell would
expand (`$VAR`, `$(...)`, backticks) is refused instead of being run.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from installer.config.text import control_character, shown
from installer.errors import ConfigError

# A BOA .barracuda.cnf is a few kB; anything past this is not a config file.
MAX_BYTES = 4 * 1024 * 1024

KEY_RE = re.compile(r"_[A-Z0-9][A-Z0-9_]*")
KEY_MAX = 64
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
                f"unexpected text after the closing quote: {shown(tail)}",
                path=path, line=lineno, key=key,
            )
        if quote == "'":
            return value  # literal, as in a shell; schema.validate refuses $ and ` in keys used
    else:
        value = re.split(r"\s+#", rest, maxsplit=1)[0].strip()
        if re.search(r"\s", value):
            raise ConfigError(
                f"value {shown(value)} has spaces: quote it, as in {key}={shown(value)}",
                path=path, line=lineno, key=key,
            )
        if value[:1] in ("'", '"'):
            raise ConfigError("unbalanced quotes", path=path, line=lineno, key=key)
    if "`" in value or "$" in value:
        raise shell_syntax(value, path, lineno, key)
    if "\\" in value:
        raise ConfigError(
            f"value {shown(value)} has a backslash; write the literal value without escapes",
            path=path, line=lineno, key=key,
        )
    return value


def shell_syntax(value: str, path: str, lineno: int, key: str) -> ConfigError:
    return ConfigError(
        f"value {shown(value)} uses shell expansion ($ or `); this file is read as data, "
        "never run: write the literal value",
        path=path, line=lineno, key=key,
    )


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
                f"cannot read {shown(line)}: expected _KEY=\"value\", a # comment or a "
                "blank line",
                path=path, line=lineno,
            )
        key = match["key"]
        if len(key) > KEY_MAX:
            raise ConfigError(
                f"key {shown(key, 40)} is too long: keys have at most {KEY_MAX} characters",
                path=path, line=lineno,
            )
        if not KEY_RE.fullmatch(key):
            raise ConfigError(
                "keys are upper case and start with an underscore, as _MY_EMAIL",
                path=path, line=lineno, key=key,
            )
        bad = control_character(match["rest"])
        if bad:
            raise ConfigError(
                f"control character {bad} in {shown(match['rest'])}: expected printable text",
                path=path, line=lineno, key=key,
            )
        if key in seen:
            raise ConfigError(
                f"set twice (first at line {seen[key]}); keep one", path=path, line=lineno, key=key
            )
        seen[key] = lineno
        entries.append(Entry(key, _unquote(match["rest"], path, lineno, key), lineno))
    return CnfFile(path, tuple(entries))


_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO (named pipe)",
          stat.S_IFSOCK: "a socket"}


def _refuse_unsafe(path: Path, info: os.stat_result) -> None:
    """A config file is a regular file (never a link, device, FIFO or directory: reading a
    FIFO hangs, and writing the file back would replace a link or a device), at most
    MAX_BYTES, owned by root (or the user running the tool) and writable by its owner only
    (anyone else who can change it could change what barracuda runs as root)."""
    where = str(path)
    if stat.S_ISLNK(info.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise ConfigError(
            f"a symbolic link (to {shown(target)}): barracuda writes this file back when a "
            "release adds keys, which would replace the link; give the real file with "
            "--config", path=where)
    if not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise ConfigError(f"{kind}; expected a config file of _KEY=\"value\" lines",
                          path=where)
    if info.st_size > MAX_BYTES:
        raise ConfigError(f"{info.st_size} bytes; a config file has at most {MAX_BYTES} "
                          "(a few kB is usual)", path=where)
    if info.st_uid not in (0, os.geteuid()):
        raise ConfigError(f"owned by uid {info.st_uid}, not root: that user could change what "
                          f"barracuda runs as root; chown root:root {path}", path=where)
    if info.st_mode & 0o022:
        who = {0o020: "its group", 0o002: "others"}.get(info.st_mode & 0o022,
                                                          "its group and others")
        raise ConfigError(f"writable by {who} (mode {info.st_mode & 0o777:04o}): they could "
                          f"change what barracuda runs as root; chmod 600 {path}", path=where)


def read(path: Path) -> CnfFile:
    """Parse the file at `path`; FileNotFoundError when there is none (the caller decides
    whether that means the defaults), ConfigError for anything that is not a safe regular
    file. The file is opened without following a link and without blocking, so a FIFO
    swapped in after the check cannot hang the run either."""
    try:
        _refuse_unsafe(path, os.lstat(path))
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError("a symbolic link: give the real file", path=str(path)) from None
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    try:
        with os.fdopen(fd, "rb") as handle:
            _refuse_unsafe(path, os.fstat(handle.fileno()))
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
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
