"""The restart budget of one service: the first restart is immediate, each further one
waits longer (exponential backoff with jitter), and past N restarts within a window the
service is FAILED: no more restarts until it is healthy again or an operator resets it.
The history is forgotten after sustained health (unlike monit's counters, peers.md §5)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

OK, DOWN, FAILED, PAUSED = "OK", "DOWN", "FAILED", "PAUSED"


@dataclass(frozen=True)
class Budget:
    max_restarts: int
    window_s: float
    base_s: float
    max_s: float
    jitter: float
    healthy_reset_s: float

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any], max_restarts: int,
                     window_s: float) -> Budget:
        backoff = dict(profile.get("backoff", {}))
        return cls(max_restarts, float(window_s), float(backoff.get("base_s", 2)),
                   float(backoff.get("max_s", 300)), float(backoff.get("jitter", 0.25)),
                   float(profile.get("healthy_reset_s", 600)))

    def recent(self, record: dict[str, Any], now: float) -> list[float]:
        return [float(t) for t in record.get("restarts", []) if now - float(t) < self.window_s]

    def decide(self, record: dict[str, Any], now: float) -> str:
        """restart, wait (backing off) or fail (the budget is spent)."""
        if len(self.recent(record, now)) >= self.max_restarts:
            return "fail"
        if now < float(record.get("next_at", 0)):
            return "wait"
        return "restart"

    def delay(self, restarts: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after the `restarts`-th restart before the next one."""
        base = min(self.max_s, self.base_s * 2 ** max(0, restarts - 1))
        return max(0.0, float(base * (1 + self.jitter * (2 * rand() - 1))))

    def restarted(self, record: dict[str, Any], now: float,
                  rand: Callable[[], float] = random.random) -> None:
        recent = [*self.recent(record, now), now]
        record["restarts"] = recent
        record["next_at"] = now + self.delay(len(recent), rand)
        record["healthy_since"] = None

    def healthy(self, record: dict[str, Any], now: float) -> None:
        """A healthy cycle: after healthy_reset_s of it the history is forgotten."""
        since = record.get("healthy_since")
        if since is None:
            record["healthy_since"] = now
        elif now - float(since) >= self.healthy_reset_s and record.get("restarts"):
            record["restarts"] = []
            record["next_at"] = 0


def fresh(state: str = OK) -> dict[str, Any]:
    return {"state": state, "restarts": [], "next_at": 0, "healthy_since": None,
            "soft": 0, "evidence": "", "since": 0, "master": None}
