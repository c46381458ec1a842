"""How big an instance's PHP-FPM pool is (docs/TUNING.md, "Octopus pools").

The machine's PHP worker budget is the master pool's pm.max_children, computed from CPUs and
RAM by the tuning rules (profiles/tuning.yml). Instances share it: each pool gets an equal
share, at least php.pool.children_min, unless its _PHP_FPM_WORKERS says otherwise. Pools are
ondemand, so an idle instance holds none of its share."""

from __future__ import annotations

from dataclasses import dataclass

from installer.data import load_profile
from installer.stack.tuning import Tuning


@dataclass(frozen=True)
class PoolSize:
    children: int
    rule: str


def pool_size(tuning: Tuning, instances: int, workers: int | None) -> PoolSize:
    if workers is not None:
        return PoolSize(workers, f"_PHP_FPM_WORKERS={workers}")
    minimum = int(load_profile("tuning")["php"]["pool"]["children_min"])
    machine = tuning.php.pm_max_children
    count = max(1, instances)
    children = max(minimum, machine // count)
    return PoolSize(children, f"max({minimum}, {machine} machine children // {count} instances)")
