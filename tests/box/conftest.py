"""pytest plumbing for the fresh-box tests under tests/box.

* Every test collected here gets the `box` marker (deselect with `-m "not box"`).
* The tests skip, with the reason, when not root or when the host tools are missing and
  host-prereqs.sh cannot install them.
* `box_factory` (function scope) starts boxes on demand; `variant_box` (module scope) is one
  fresh box per variant in BOX_VARIANTS, narrowed by the env BOX_VARIANTS="systemd-bookworm,...".
* When a test that used a box fails, the box's artifacts (/var/log, journal, ps, ss, console)
  are collected into $BARRACUDA_BOX_ARTIFACTS/<box> (default <repo>/.box-artifacts/<box>)
  before the box is stopped; the paths are listed at the end of the run.
* Boxes are stopped by fixture finalizers (also on Ctrl-C; SIGTERM is turned into Ctrl-C), by
  an atexit safety net, and boxes left by a killed run are removed at the next session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from . import boxes, plugin
from .boxes import Box, start_box
from .plugin import BOX_VARIANTS as BOX_VARIANTS  # re-exported: tests import it from here
from .plugin import selected_variants

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
_ARTIFACTS = pytest.StashKey[list[Path]]()


# --------------------------------------------------------------------------- hooks


def pytest_configure(config: pytest.Config) -> None:
    markers = config.getini("markers")
    if not any(str(line).split(":")[0].split("(")[0].strip() == "box" for line in markers):
        config.addinivalue_line(
            "markers", "box: end-to-end test in a throwaway Debian box (root, slow)")
    config.stash[_ARTIFACTS] = []
    # The session plumbing (ordering, xdist groups, rootfs pre-build, timing table): tests/run
    # loads it with -p; a plain `pytest` run gets it here.
    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, "tests.box.plugin")
    # SIGTERM (CI timeouts) unwinds like Ctrl-C, so the finalizers stop the boxes.
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.box)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[
        None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Box):
                value.failed = True
            elif isinstance(value, BoxFactory):
                for box in value.boxes:
                    box.failed = True


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def box_prereqs() -> None:
    """Skip unless boxes can run here; install missing host tools; remove stale boxes."""
    if os.geteuid() != 0:
        pytest.skip("fresh-box tests need root (namespaces, mounts, debootstrap)")
    missing = boxes.missing_host_tools()
    if missing:
        proc = subprocess.run([str(HERE / "host-prereqs.sh")], capture_output=True, text=True,
                              check=False)
        missing = boxes.missing_host_tools()
        if missing:
            pytest.skip(f"host tools missing ({', '.join(missing)}) and host-prereqs.sh could "
                        f"not install them (rc {proc.returncode}): {proc.stderr.strip()[-300:]}")
    stale = boxes.cleanup_stale()
    if stale:
        print(f"[box] removed stale boxes: {', '.join(stale)}")


def finish_box(box: Box, config: pytest.Config) -> None:
    """Collect the artifacts of a box whose tests failed, then stop it (always)."""
    try:
        if box.failed:
            box.collect_artifacts(box.artifacts_dir)
            config.stash[_ARTIFACTS].append(box.artifacts_dir)
    finally:
        box.stop()


@contextmanager
def installed_box(config: pytest.Config, *, kind: str = "systemd", release: str = "bookworm",
                  cnf: str = "") -> Iterator[Box]:
    """A fresh box with the project installed by `./install.sh --yes` (after writing `cnf`
    as /root/.barracuda.cnf, when given); its artifacts are kept if a test using it fails."""
    box = start_box(kind, release)
    try:
        if cnf:
            box.write_file("/root/.barracuda.cnf", cnf, 0o600)
        box.install_project(REPO)
        yield box
    finally:
        finish_box(box, config)


def octopus(box: Box, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`octopus ARGS` in the box."""
    return box.run(["octopus", *args], check=check)


class BoxFactory:
    """Starts boxes for one test: `box_factory(kind="systemd", release="bookworm")`."""

    def __init__(self) -> None:
        self.boxes: list[Box] = []

    def __call__(self, kind: str = "systemd", release: str = "bookworm",
                 name: str | None = None) -> Box:
        box = start_box(kind, release, name)
        self.boxes.append(box)
        return box


@pytest.fixture
def box_factory(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[BoxFactory]:
    factory = BoxFactory()
    try:
        yield factory
    finally:
        errors = []
        for box in factory.boxes:
            try:
                finish_box(box, request.config)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture(scope="module", params=selected_variants())
def box_variant(request: pytest.FixtureRequest) -> str:
    """The variant ("systemd-bookworm", ...) of the module's variant_box."""
    return str(request.param)


@pytest.fixture(scope="module")
def variant_box(box_prereqs: None, box_variant: str,
                request: pytest.FixtureRequest) -> Iterator[Box]:
    """A fresh, started box of `box_variant`, shared by the tests of one module."""
    kind, _, release = box_variant.partition("-")
    box = start_box(kind, release)
    try:
        yield box
    finally:
        finish_box(box, request.config)
