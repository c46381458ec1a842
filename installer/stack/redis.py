"""Redis: loopback and a unix socket only, a kept generated password, maxmemory from RAM,
and one ACL user per octopus instance.

Tenants: each instance gets its own Redis user (Redis 6+ ACL; Debian 12 ships Redis 7.0)
limited to its key prefix (`~oN:*`) and the commands a cache needs: no FLUSHALL, FLUSHDB,
KEYS, SCAN (which would list the other tenants' key names), CONFIG or other admin command.
redis.conf includes every file of ACL_DIR (`include` takes a glob since Redis 7.0), where
octopus writes one `user` line per instance (a SHA-256 of the password, never the password),
so the users survive a restart; `RedisUser` applies the same rules to the running server
(ACL SETUSER) and checks them by what they allow (ACL DRYRUN), not by their spelling."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from installer.data import load_profile
from installer.errors import ApplyError
from installer.plan import Component
from installer.resources.base import Change, Context, Resource, restart
from installer.resources.files import Directory, File
from installer.resources.system import Service
from installer.runner import Result
from installer.stack.context import StackContext

ACL_DIR = str(load_profile("paths")["redis_acl_dir"])
# What a tenant may do besides its own keys: everything but the dangerous and admin
# commands (FLUSHALL, FLUSHDB, KEYS, CONFIG, DEBUG, MONITOR, CLIENT KILL, SHUTDOWN ...)
# and SCAN, which lists every key of the database whatever the key pattern.
TENANT_COMMANDS = ("+@all", "-@dangerous", "-@admin", "-scan")


def pong(socket: str, password: str) -> Callable[[Context], str | None]:
    def probe(ctx: Context) -> str | None:
        output = ""
        for _ in range(60):
            result = ctx.runner.run(["redis-cli", "-s", socket, "ping"], check=False,
                                    env={"REDISCLI_AUTH": password}, timeout=10)
            output = result.output
            if result.ok and output == "PONG":
                return None
            time.sleep(0.5)
        return f"redis-cli -s {socket} ping answered {output!r}"

    return probe


def component(stack: StackContext) -> Component:
    service = stack.release.service("redis")
    restarted = (restart(service),)
    resources: list[Resource] = [
        Directory(ACL_DIR, mode=0o750, owner="redis", fgroup="redis",
                  requires=("packages:stack",)),
        # `include` of a glob that matches nothing is refused by some versions: one file
        # is always there.
        File(f"{ACL_DIR}/00-none.conf", content="# No user here: octopus writes one file per "
             "instance beside this one.\n", owner="redis", fgroup="redis", mode=0o640,
             requires=(f"dir:{ACL_DIR}",)),
        File("/etc/redis/redis.conf", template="redis/redis.conf.j2",
             context=stack.template_context(), owner="redis",
             fgroup="redis", mode=0o640, secret=True, notify=restarted,
             requires=("packages:stack", f"file:{ACL_DIR}/00-none.conf")),
        Service(service, requires=("packages:stack",)),
    ]
    return Component("redis", resources,
                     health=[pong(stack.paths["redis_socket"], stack.redis_password)])


# --------------------------------------------------------------------------- tenants


def tenant_rules(user: str, password: str) -> tuple[str, ...]:
    """The ACL rules of an instance's user: its password (hashed), its keys and channels."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return ("reset", "on", f"#{digest}", f"~{user}:*", f"&{user}:*", *TENANT_COMMANDS)


def acl_file(user: str, password: str) -> File:
    """/etc/redis/acl.d/USER.conf: the user as redis.conf reads it at start."""
    line = "user " + " ".join((user, *tenant_rules(user, password)))
    return File(f"{ACL_DIR}/{user}.conf", content=line + "\n", owner="redis", fgroup="redis",
                mode=0o640, secret=True)


@dataclass
class RedisUser(Resource):
    """The instance's user in the running server, as `acl_file` describes it (or gone, with
    present=False). Applied with ACL SETUSER; the undo puts the user back as it was."""

    user: str
    password: str = field(default="", repr=False)
    socket: str = ""
    admin_password: str = field(default="", repr=False)  # the default user's
    present: bool = True

    @property
    def id(self) -> str:
        return f"redis-user:{self.user}"

    @property
    def ok_reason(self) -> str:
        return f"may use {self.user}:* only" if self.present else "absent"

    def _cli(self, ctx: Context, *args: str) -> Result:
        return ctx.runner.run(["redis-cli", "-s", self.socket, "--no-raw", *args],
                              check=False, env={"REDISCLI_AUTH": self.admin_password},
                              timeout=30)

    def _rules(self, ctx: Context) -> str | None:
        """The user's rules as the server lists them, or None when it has no such user."""
        listed = self._cli(ctx, "ACL", "LIST")
        for line in listed.stdout.splitlines():
            text = line.split(") ", 1)[-1].strip().strip('"')
            if text.startswith(f"user {self.user} "):
                return text[len("user "):]
        return None

    def problems(self, ctx: Context) -> list[str]:
        if self._rules(ctx) is None:
            return ["missing"]
        found = []
        digest = hashlib.sha256(self.password.encode()).hexdigest()
        rules = self._rules(ctx) or ""
        if f"#{digest}" not in rules.split():
            found.append("another password")
        expect = {("get", f"{self.user}:x"): True, ("get", "other:x"): False,
                  ("flushall",): False, ("keys", "*"): False, ("scan", "0"): False}
        for command, allowed in expect.items():
            result = self._cli(ctx, "ACL", "DRYRUN", self.user, *command)
            if (result.stdout.strip().strip('"') == "OK") != allowed:
                found.append(f"{' '.join(command)} {'refused' if allowed else 'allowed'}")
        return found

    def check(self, ctx: Context) -> list[Change]:
        if not ctx.target.live:
            return [self.live_change(ctx, "acl", f"user {self.user}" if self.present
                                     else f"delete user {self.user}")]
        if not self.present:
            return [self.change("delete", "an instance's user")] \
                if self._rules(ctx) is not None else []
        problems = self.problems(ctx)
        return [self.change("acl", ", ".join(problems))] if problems else []

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        before = self._rules(ctx)
        if self.present:
            result = self._cli(ctx, "ACL", "SETUSER", self.user,
                               *tenant_rules(self.user, self.password))
        else:
            result = self._cli(ctx, "ACL", "DELUSER", self.user)
        if not result.ok or "ERR" in result.stdout:
            raise ApplyError(f"redis ACL for {self.user}: {result.output.strip()[:200]}")
        user = self.user

        def undo() -> None:
            if before is None:
                self._cli(ctx, "ACL", "DELUSER", user)
            else:
                self._cli(ctx, "ACL", "SETUSER", user, "reset", *before.split()[1:])

        ctx.journal.did(f"{'set' if self.present else 'deleted'} redis user {user}", undo)
