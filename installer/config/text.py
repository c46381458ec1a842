"""How an operator's value appears in a one-line message: quoted, with control characters
escaped (a newline in a name must not split the error in two) and cut when it is long (a
1 MB value is not echoed back whole)."""

from __future__ import annotations

LIMIT = 60


def shown(value: str, limit: int = LIMIT) -> str:
    """`value` in double quotes, printable, at most `limit` characters of it."""
    cut = value[:limit]
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in cut)
    if len(value) > limit:
        return f'"{text}..." ({len(value)} characters)'
    return f'"{text}"'


def control_character(value: str) -> str | None:
    """The first character of `value` that is not printable text (NUL, a newline, an
    escape...), escaped, or None. A tab counts as text."""
    for ch in value:
        if ch != "\t" and not ch.isprintable() and ch != " ":
            return ch.encode("unicode_escape").decode("ascii")
    return None
