"""Which backups to keep: the newest good backup of each of the newest N days, M ISO weeks
and K months that have one (the three sets overlap), and always the newest good backup.
Pure: timestamps in, the kept ones (with the reasons) out."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Retention:
    daily: int
    weekly: int
    monthly: int


def _day(t: datetime) -> Hashable:
    return t.date()


def _week(t: datetime) -> Hashable:
    year, week, _ = t.isocalendar()
    return (year, week)


def _month(t: datetime) -> Hashable:
    return (t.year, t.month)


def keep(good: Iterable[datetime], retention: Retention) -> dict[datetime, list[str]]:
    """The good backups to keep, each with why ("daily 2026-01-03", "weekly 2026-W01", ...)."""
    newest_first = sorted(set(good), reverse=True)
    kept: dict[datetime, list[str]] = {}
    rules: list[tuple[str, int, Callable[[datetime], Hashable], Callable[[datetime], str]]] = [
        ("daily", retention.daily, _day, lambda t: t.strftime("%Y-%m-%d")),
        ("weekly", retention.weekly, _week,
         lambda t: f"{t.isocalendar()[0]}-W{t.isocalendar()[1]:02d}"),
        ("monthly", retention.monthly, _month, lambda t: t.strftime("%Y-%m")),
    ]
    for name, count, bucket, label in rules:
        seen: set[Hashable] = set()
        for stamp in newest_first:
            if len(seen) >= count:
                break
            key = bucket(stamp)
            if key in seen:
                continue
            seen.add(key)
            kept.setdefault(stamp, []).append(f"{name} {label(stamp)}")
    if newest_first and newest_first[0] not in kept:
        kept[newest_first[0]] = ["the newest good backup"]
    return kept
