"""Components, ordering and the plan: which changes are still needed, and why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from installer.config import Config
from installer.errors import DataError
from installer.facts import Facts
from installer.resources.base import Change, Context, Resource
from installer.runlog import Redactor


@dataclass(frozen=True)
class Validator:
    """A command that must pass on the written files before any reload (e.g. nginx -t)."""

    argv: list[str]
    what: str
    live_only: bool = True  # most validators read the live paths (nginx -t), not a --root tree


@dataclass
class Component:
    """A group of resources applied together: its validators run after its files are
    written, then its services start and its reloads run once. Components run in the order
    of their `phase` (a workflow's named phases, e.g. octopus's Phase), and in the order
    they were built within one phase."""

    name: str
    resources: list[Resource]
    validators: list[Validator] = field(default_factory=list)
    health: list[Callable[[Context], str | None]] = field(default_factory=list)
    preflight: list[Callable[[Context], str | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # shown with the plan (e.g. tuning rules)
    phase: int = 0


# What every command converges: the run's components, from the config and the facts (pure:
# every check of the operator's input happens here, before the plan).
Builder = Callable[[Config, Facts, Redactor], list[Component]]


@dataclass
class Step:
    component: str
    resource: Resource
    changes: list[Change]


@dataclass
class Plan:
    steps: list[Step]
    notes: list[str] = field(default_factory=list)

    @property
    def pending(self) -> list[Change]:
        """Changes a run would execute (planned-only changes under --root excluded)."""
        return [c for step in self.steps for c in step.changes if c.executed]

    @property
    def planned_only(self) -> list[Change]:
        return [c for step in self.steps for c in step.changes if not c.executed]

    def as_dict(self) -> list[dict[str, object]]:
        return [
            {"component": s.component, "resource": s.resource.id,
             "changes": [c.as_dict() for c in s.changes]}
            for s in self.steps
        ]


def order(resources: list[Resource], earlier: frozenset[str] = frozenset()) -> list[Resource]:
    """Declared order, except that a resource comes after every resource it requires.

    `earlier` holds the ids of components applied before this one (already satisfied)."""
    by_id = {r.id: r for r in resources}
    if len(by_id) != len(resources):
        seen: set[str] = set()
        dupes = {r.id for r in resources if r.id in seen or seen.add(r.id)}  # type: ignore[func-returns-value]
        raise DataError(f"resource declared twice: {', '.join(sorted(dupes))}")
    done: list[Resource] = []
    placed: set[str] = set()
    visiting: set[str] = set()

    def visit(resource: Resource) -> None:
        if resource.id in placed:
            return
        if resource.id in visiting:
            raise DataError(f"dependency cycle through {resource.id}")
        visiting.add(resource.id)
        for dep in resource.requires:
            if dep in earlier and dep not in by_id:
                continue
            if dep not in by_id:
                raise DataError(f"{resource.id} requires {dep}, which is not declared")
            visit(by_id[dep])
        visiting.discard(resource.id)
        placed.add(resource.id)
        done.append(resource)

    for resource in resources:
        visit(resource)
    return done


def make_plan(components: list[Component], ctx: Context) -> Plan:
    steps: list[Step] = []
    for component, resources in ordered(components):
        for resource in resources:
            steps.append(Step(component.name, resource, resource.check(ctx)))
    return Plan(steps, [note for component in components for note in component.notes])


def ordered(components: list[Component]) -> list[tuple[Component, list[Resource]]]:
    """Each component with its resources in apply order."""
    earlier: set[str] = set()
    result = []
    for component in sorted(components, key=lambda c: c.phase):
        resources = order(component.resources, frozenset(earlier))
        earlier.update(r.id for r in resources)
        result.append((component, resources))
    return result
