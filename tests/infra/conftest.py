"""The stack checks in this folder run against any host pytest-testinfra reaches:

    pytest tests/infra --hosts=ssh://vagrant@HOST      (a Vagrant VM, see vagrant/README.md)

The box tests (tests/box) run the same checks against fresh boxes. Without --hosts, the
checks here are skipped: they are never run against the machine running the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("hosts", default=None):
        return
    skip = pytest.mark.skip(reason="stack checks need --hosts=... (see vagrant/README.md)")
    for item in items:
        if Path(item.path).resolve().parent == HERE:
            item.add_marker(skip)
