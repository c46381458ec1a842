"""MariaDB databases and accounts as resources. Each one that creates or changes something
registers its undo in the run's journal: a failed run drops the database it created, drops
the account it created or gives an existing one back its old password and grants. Under
--root nothing is executed (planned only). No validator reads a database, so none of these
keeps the staged check (installer/staging.py) from running."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from installer.database import sql
from installer.resources.base import Change, Context, Resource
from installer.runner import Runner


@dataclass
class Database(Resource):

    name: str

    @property
    def id(self) -> str:
        return f"database:{self.name}"

    @property
    def ok_reason(self) -> str:
        return "exists"

    def check(self, ctx: Context) -> list[Change]:
        if ctx.target.live and sql.database_exists(ctx.runner, self.name):
            return []
        return [self.live_change(ctx, "create", "missing")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        runner = ctx.runner
        sql.execute(runner, [sql.create_database(self.name)])
        ctx.journal.did(f"created database {self.name}",
                        lambda: sql.execute(runner, [sql.drop_database(self.name)]))


@dataclass
class DatabaseAccount(Resource):
    """`user`@localhost exists, logs in with `password`, and holds ALL on exactly
    `databases` (each by its exact name, never a pattern): grants it should not hold are
    taken back."""

    user: str
    password: str
    databases: tuple[str, ...] = ()
    socket: str = ""  # the server's socket ("" = the client's default)

    @property
    def id(self) -> str:
        return f"db-account:{self.user}"

    @property
    def ok_reason(self) -> str:
        shown = ", ".join(self.databases) or "no database"
        return f"logs in with its password, may use {shown}"

    def _wanted(self) -> set[str]:
        return {sql.like_escaped(d) for d in self.databases}

    def check(self, ctx: Context) -> list[Change]:
        if not ctx.target.live:
            return [self.live_change(ctx, "create", f"account {self.user}")]
        runner = ctx.runner
        if not sql.user_exists(runner, self.user):
            return [self.change("create", "missing")]
        changes = []
        if not sql.logs_in(runner, self.user, self.password, socket=self.socket):
            changes.append(self.change("password", "does not log in with the kept password"))
        held = sql.granted_databases(runner, self.user)
        missing = sorted(self._wanted() - held)
        extra = sorted(held - self._wanted())
        if missing:
            changes.append(self.change("grant", f"may not use {', '.join(missing)}"))
        if extra:
            changes.append(self.change("revoke", f"may use {', '.join(extra)}, which it should "
                                                 "not"))
        return changes

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        runner, user = ctx.runner, self.user
        actions = {c.action for c in changes}
        if "create" in actions:
            sql.execute(runner, sql.ensure_user(user, self.password))
            ctx.journal.did(f"created database account {user}",
                            lambda: sql.execute(runner, [sql.drop_user(user)]))
        elif "password" in actions:
            old = sql.user_auth(runner, user)
            sql.execute(runner, sql.ensure_user(user, self.password))
            ctx.journal.did(f"changed the password of database account {user}",
                            lambda: sql.execute(runner, [sql.restore_auth(user, old)]))
        held = sql.granted_databases(runner, user)
        for database in self.databases:
            pattern = sql.like_escaped(database)
            if pattern not in held:
                sql.execute(runner, [sql.grant_all(user, database)])
                ctx.journal.did(f"granted {user} {database}",
                                _statement(runner, sql.revoke_all(user, pattern)))
        for pattern in sorted(held - self._wanted()):
            sql.execute(runner, [sql.revoke_all(user, pattern)])
            ctx.journal.did(f"revoked {user} on {pattern}",
                            _statement(runner, sql.grant_pattern(user, pattern)))


def _statement(runner: Runner, statement: str) -> Callable[[], None]:
    """An undo that runs one statement."""
    return lambda: sql.execute(runner, [statement])


@dataclass
class DatabasesAbsent(Resource):
    """Databases and accounts that must be gone. Dropping cannot be undone: it is only
    declared after a verified backup, and the rollback sentence names it."""

    label: str
    databases: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    why: str = "must be gone"

    @property
    def id(self) -> str:
        return f"databases-absent:{self.label}"

    @property
    def ok_reason(self) -> str:
        return "absent"

    def _present(self, ctx: Context) -> list[str]:
        runner = ctx.runner
        found = [f"database {d}" for d in self.databases if sql.database_exists(runner, d)]
        found += [f"account {u}" for u in self.users if sql.user_exists(runner, u)]
        return found

    def check(self, ctx: Context) -> list[Change]:
        if not ctx.target.live:
            shown = " ".join([*self.databases, *self.users])
            return [self.live_change(ctx, "drop", f"{shown}: {self.why}")]
        present = self._present(ctx)
        if not present:
            return []
        return [self.change("drop", f"{', '.join(present)}: {self.why}")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        present = self._present(ctx)
        sql.execute(ctx.runner, [*(sql.drop_database(d) for d in self.databases),
                                 *(sql.drop_user(u) for u in self.users)])
        for what in present:
            ctx.journal.did(f"dropped {what} ({self.why})", None)
