"""What every resource shares: the change it reports and the context it runs in.

A resource compares facts with the wish and returns only the changes still needed, each with
a reason (and a diff for files); `apply` makes them. Apply re-checks just before changing."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from installer.facts import Facts
from installer.journal import Journal
from installer.runner import Runner
from installer.services import ServiceManager
from installer.state import ManagedState
from installer.target import Target

PLANNED_ONLY = "(planned only under --root)"


@dataclass(frozen=True)
class Change:
    resource: str
    action: str  # create, update, install, start, enable, run, ...
    reason: str
    diff: str = ""
    executed: bool = True  # False: planned only (packages, services, users under --root)

    def as_dict(self) -> dict[str, object]:
        return {
            "resource": self.resource,
            "action": self.action,
            "reason": self.reason,
            "diff": self.diff,
            "executed": self.executed,
        }


@dataclass(frozen=True)
class Handler:
    """What a changed resource asks for, once, after its component was applied and
    validated: a service reloaded or restarted."""

    action: str  # reload or restart
    service: str

    def __str__(self) -> str:
        return f"{self.action} {self.service}"


def reload(service: str) -> Handler:
    return Handler("reload", service)


def restart(service: str) -> Handler:
    return Handler("restart", service)


@dataclass
class Context:
    target: Target
    runner: Runner
    facts: Facts
    services: ServiceManager | None  # None under --root: nothing is executed
    state: ManagedState
    backup_dir: Path  # where copies of replaced operator files go
    keep_local_edits: bool = False
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("barracuda"))
    notes: list[str] = field(default_factory=list)  # reported in the summary
    apt_updated: bool = False
    journal: Journal = field(default_factory=Journal)  # how to undo what is not a file

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)
            self.log.warning("%s", message)


@dataclass(kw_only=True)
class Resource(ABC):
    """One piece of desired state. Subclasses are dataclasses with their own fields."""

    # True for resources that change what validators read besides files (accounts,
    # packages, code trees, certificates): while one of these is pending, validators of its
    # component and of later ones cannot be run on a staged tree (installer/staging.py).
    changes_environment: ClassVar[bool] = False

    requires: tuple[str, ...] = ()  # ids of resources that must come first
    notify: tuple[Handler, ...] = ()  # run once at the end of the component

    @property
    @abstractmethod
    def id(self) -> str: ...

    @abstractmethod
    def check(self, ctx: Context) -> list[Change]:
        """The changes still needed; empty when the machine already matches."""

    @abstractmethod
    def apply(self, ctx: Context, changes: list[Change]) -> None:
        """Make `changes` (just returned by check)."""

    def paths(self, ctx: Context) -> list[str]:
        """Managed paths this resource may change (checkpointed before apply)."""
        return []

    @property
    def ok_reason(self) -> str:
        return "as wanted"

    def change(self, action: str, reason: str, diff: str = "", executed: bool = True) -> Change:
        return Change(self.id, action, reason, diff, executed)

    def live_change(self, ctx: Context, action: str, reason: str) -> Change:
        """A change made through another program (useradd, apt, openssl ...): executed on a
        live machine, planned only under --root (and the reason says so)."""
        live = ctx.target.live
        return self.change(action, reason if live else f"{reason} {PLANNED_ONLY}",
                           executed=live)
