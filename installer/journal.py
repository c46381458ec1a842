"""The run's journal: how to undo every change that is not a file.

Files are checkpointed (installer/checkpoint.py). Everything else a resource makes (a
database, a database account, a Linux account, a directory tree, restored data) registers
here how to take it back, as certbot's reverter registers undo commands:

    ctx.journal.did("database o1_site", lambda: execute(runner, [drop_database("o1_site")]))

A failed or interrupted run undoes the journal in reverse order, then restores the files.
A change that cannot be taken back (a dropped database) registers what it was with no undo,
so the rollback sentence says so. Work that must wait for the run's success (deleting a tree
that was only moved aside) registers `at_commit`; it runs only once the whole run passed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("barracuda")


@dataclass(frozen=True)
class Entry:
    what: str  # "created database o1_site"
    undo: Callable[[], object] | None  # None: cannot be taken back


@dataclass
class UndoReport:
    undone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "what (why)"
    kept: list[str] = field(default_factory=list)  # could not be taken back by design


@dataclass
class Journal:
    entries: list[Entry] = field(default_factory=list)
    commits: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def did(self, what: str, undo: Callable[[], object] | None) -> None:
        """Record a change and how to take it back (None when it cannot be)."""
        self.entries.append(Entry(what, undo))
        log.info("journal: %s", what)

    def at_commit(self, what: str, action: Callable[[], None]) -> None:
        self.commits.append((what, action))

    def undo(self) -> UndoReport:
        """Take every change back, newest first; never raises."""
        report = UndoReport()
        for entry in reversed(self.entries):
            if entry.undo is None:
                report.kept.append(entry.what)
                continue
            try:
                entry.undo()
            except Exception as exc:  # report every failure, keep undoing the rest
                report.failed.append(f"{entry.what} ({str(exc)[:160] or type(exc).__name__})")
            else:
                report.undone.append(entry.what)
        self.entries.clear()
        self.commits.clear()
        return report

    def commit(self) -> list[str]:
        """The run passed: do the deferred work; the problems (one line each), if any."""
        problems = []
        for what, action in self.commits:
            try:
                action()
            except Exception as exc:
                problems.append(f"{what}: {exc}")
        self.entries.clear()
        self.commits.clear()
        return problems
