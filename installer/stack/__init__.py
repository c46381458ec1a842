"""The stack, one module per component. `build` is pure: config and facts in, components
(desired resources, validators, health probes) out."""

from __future__ import annotations

from installer.config import Config
from installer.facts import Facts
from installer.plan import Component
from installer.runlog import Redactor
from installer.stack import base


def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
    release = facts.distro.codename
    return [base.component(config, release)]
