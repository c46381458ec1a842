"""The box suite's session plumbing, loaded by tests/run with `-p tests.box.plugin` (and by
tests/box/conftest.py when pytest is run by hand), so that it also runs in the pytest-xdist
controller, which never imports the test directories' conftest files.

* Scheduling unit (the xdist group): a box module and variant (`tests/box/test_monitor.py::
  systemd-trixie`), or a whole module when its tests take no variant; fast test modules are a
  unit each. tests/run runs the units two at a time (`-n 2 --dist loadgroup`) where the cores
  allow, longest first, from the times of earlier runs kept in the box cache
  (box-times.json); a unit never seen before counts as the longest known.
* Before any worker starts, the controller builds the root filesystem tarballs the selected
  variants need (once, under their lock), so parallel modules never wait on a build.
* At the end of every run that ran box tests: a table of the slowest box modules (the sum of
  their tests' setup, call and teardown, per variant) and the totals.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from . import boxes, rootfs

HERE = Path(__file__).resolve().parent
BOX_VARIANTS = ["systemd-bookworm", "systemd-trixie", "sysv-bookworm"]
TIMES_FILE = "box-times.json"
GROUP_KEY = "box_group"
_INPUT_KEY = "barracuda_box_times"
_times_stash = pytest.StashKey[dict[str, float]]()
_started_stash = pytest.StashKey[float]()


def times_path() -> Path:
    return rootfs.cache_dir() / TIMES_FILE


def load_times(path: Path | None = None) -> dict[str, float]:
    """Seconds per scheduling unit from earlier runs ({} when unknown or unreadable)."""
    try:
        raw = json.loads((path or times_path()).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)}


def save_times(times: dict[str, float], path: Path | None = None) -> None:
    """Merge `times` into the file (atomic rename; concurrent runs: the last one wins)."""
    path = path or times_path()
    merged = {**load_times(path), **times}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.{os.getpid()}")
        part.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
        os.replace(part, path)
    except OSError:
        pass  # a read-only cache only costs the ordering of the next run


def _valid_variant(variant: str) -> bool:
    kind, _, release = variant.partition("-")
    return kind in boxes.KINDS and release in rootfs.RELEASES


def selected_variants() -> list[str]:
    """BOX_VARIANTS, or the comma-separated subset named by the env BOX_VARIANTS."""
    raw = os.environ.get("BOX_VARIANTS", "").strip()
    if not raw:
        return list(BOX_VARIANTS)
    chosen = [item.strip() for item in raw.split(",") if item.strip()]
    bad = [item for item in chosen if not _valid_variant(item)]
    if bad or not chosen:
        raise pytest.UsageError(
            f"BOX_VARIANTS={raw!r}: unknown variant(s) {bad}; use KIND-RELEASE with KIND in "
            f"{boxes.KINDS} and RELEASE in {tuple(rootfs.RELEASES)}")
    return chosen


def is_box(item: pytest.Item) -> bool:
    return HERE in Path(item.path).resolve().parents


def group_of(item: pytest.Item) -> str:
    """The scheduling unit of `item` (see the module docstring)."""
    module = item.nodeid.split("::", 1)[0]
    callspec = getattr(item, "callspec", None)
    variant = callspec.params.get("box_variant") if callspec is not None else None
    return f"{module}::{variant}" if variant else module


def unit_of_nodeid(nodeid: str) -> str:
    """group_of() from a node id alone (what the xdist controller sees of a test)."""
    nodeid = nodeid.split("@", 1)[0]
    module = nodeid.split("::", 1)[0]
    params = nodeid.rpartition("[")[2].rstrip("]") if nodeid.endswith("]") else ""
    for variant in sorted((f"{k}-{r}" for k in boxes.KINDS for r in rootfs.RELEASES), key=len,
                          reverse=True):
        if params == variant or params.startswith(f"{variant}-") or params.endswith(
                f"-{variant}"):
            return f"{module}::{variant}"
    return module


def order(items: list[pytest.Item], times: dict[str, float]) -> None:
    """Sort `items` in place: box units longest first (unknown ones as the longest known),
    then the fast modules; the order inside a unit is kept."""
    default = max(times.values(), default=0.0) + 1.0
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(group_of(item), index)

    def key(pair: tuple[int, pytest.Item]) -> tuple[int, float, int, int]:
        index, item = pair
        group = group_of(item)
        if not is_box(item):
            return (1, 0.0, first[group], index)
        return (0, -times.get(group, default), first[group], index)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]


def box_in_scope(config: pytest.Config) -> bool:
    """Would this run collect box tests? (by its arguments and -m expression)"""
    if "not box" in (config.getoption("markexpr", "") or "").replace("  ", " "):
        return False
    args = [arg.split("::", 1)[0] for arg in config.args] or ["."]
    for arg in args:
        path = Path(config.invocation_params.dir, arg).resolve()
        if path == HERE or HERE in path.parents or path in HERE.parents:
            return True
    return False


def prebuild(variants: list[str]) -> None:
    """Build (if missing) the tarballs of the releases of `variants`, one after the other."""
    if os.geteuid() != 0 or boxes.missing_host_tools():
        return  # the tests will skip and say why
    for release in dict.fromkeys(v.partition("-")[2] for v in variants):
        rootfs.ensure_rootfs(release)


# --------------------------------------------------------------------------- hooks


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_started_stash] = time.monotonic()
    if _is_worker(config):
        raw = config.workerinput.get(_INPUT_KEY, "{}")  # type: ignore[attr-defined]
        config.stash[_times_stash] = {str(k): float(v) for k, v in json.loads(raw).items()}
    else:
        config.stash[_times_stash] = load_times()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: every worker orders by the same times (read once, here)."""
    node.workerinput[_INPUT_KEY] = json.dumps(node.config.stash[_times_stash])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """loadgroup, but a worker takes its next unit only once it is out of work. xdist's own
    takes one as soon as 2 tests of the current unit are left, and a box module's last two
    tests can take minutes: the other worker would then sit idle at the end of the run,
    while the unit it could have run waits behind them. (One test is always left: a worker
    holds its last test back until it knows what comes next.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class OneUnitAhead(LoadGroupScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            """The unit of a test from its node id alone: its module, and the variant of
            its box when it has one (`tests/box/test_x.py::t[systemd-trixie]`). xdist's own
            loadgroup reads a group suffix that its worker adds to the node id, and that
            suffix was missing on the workers: the units were split between them."""
            return unit_of_nodeid(nodeid)

        def _reschedule(self, node: Any) -> None:
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) > 1:
                return
            self._assign_work_unit(node)

    return OneUnitAhead(config, log)


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if _is_worker(config) or not box_in_scope(config):
        return
    try:
        variants = selected_variants()
    except pytest.UsageError:
        return  # reported by the conftest at collection
    prebuild(variants)


def pytest_itemcollected(item: pytest.Item) -> None:
    # As each item is collected: xdist's worker reads the xdist_group marks in its own
    # pytest_collection_modifyitems, which runs before a plugin's hook of that name (marks
    # added there came too late, and the units were split between workers).
    group = group_of(item)
    item.add_marker(pytest.mark.xdist_group(group))
    item.user_properties.append((GROUP_KEY, group))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order(items, config.stash.get(_times_stash, {}))


class _Timing:
    """Seconds per box unit, summed from the reports (in the xdist controller: of every
    worker) of setup, call and teardown."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.failed: set[str] = set()

    def add(self, report: pytest.TestReport) -> None:
        group = dict(report.user_properties).get(GROUP_KEY)
        if not isinstance(group, str) or not group.startswith(BOX_PREFIX):
            return
        self.seconds[group] = self.seconds.get(group, 0.0) + report.duration
        if report.failed:
            self.failed.add(group)


BOX_PREFIX = "tests/box/"
_TIMING = _Timing()


def _timing(_config: pytest.Config) -> _Timing:
    return _TIMING


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _TIMING.add(report)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if _is_worker(session.config):
        return
    timing = _timing(session.config)
    if timing.seconds:
        save_times({g: s for g, s in timing.seconds.items() if g not in timing.failed})


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    if _is_worker(config):
        return
    started = config.stash.get(_started_stash, time.monotonic())
    artifacts = boxes.artifacts_root()
    if artifacts.is_dir():
        since = time.time() - (time.monotonic() - started)
        # Every box keeps its install logs there; those of failed tests have its console too.
        fresh = sorted(p for p in artifacts.iterdir()
                       if (p / "console.log").exists() and p.stat().st_mtime >= since)
        if fresh:
            terminalreporter.section("box artifacts (failed tests)")
            for path in fresh:
                terminalreporter.write_line(str(path))
    timing = _timing(config)
    if not timing.seconds:
        return
    for line in timing_table(timing.seconds, time.monotonic() - started,
                             workers=int(getattr(config.option, "numprocesses", 0) or 1)):
        terminalreporter.write_line(line)


def timing_table(seconds: dict[str, float], wall: float, *, workers: int,
                 rows: int = 12) -> list[str]:
    """The slowest box modules (variants summed, each shown), the box total and the wall
    time of the whole session."""
    modules: dict[str, dict[str, float]] = {}
    for group, spent in seconds.items():
        module, _, variant = group.partition("::")
        modules.setdefault(module, {})[variant or "-"] = spent
    ranked = sorted(modules.items(), key=lambda kv: -sum(kv[1].values()))
    total = sum(seconds.values())
    lines = [f"{'=' * 20} box module times (slowest first) {'=' * 20}",
             f"{'seconds':>8}  {'module':<34} per variant"]
    for module, per in ranked[:rows]:
        detail = ", ".join(f"{v} {s:.0f}" for v, s in sorted(per.items(), key=lambda kv: -kv[1]))
        lines.append(f"{sum(per.values()):8.0f}  {Path(module).name:<34} {detail}")
    if len(ranked) > rows:
        rest = sum(sum(per.values()) for _, per in ranked[rows:])
        lines.append(f"{rest:8.0f}  ({len(ranked) - rows} more modules)")
    lines.append(f"{total:8.0f}  box total ({len(ranked)} modules, {len(seconds)} units) "
                 f"over {workers} worker(s); session wall time {wall:.0f} s "
                 f"({wall / 60:.1f} min)")
    return lines
