"""MariaDB: a tuned drop-in, the service, root access through /root/.my.cnf with a kept
generated password, and the web user's password-less (unix_socket) account for /health."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from installer.database import sql
from installer.database.sql import DatabaseError
from installer.plan import Component, Validator
from installer.resources.base import Context, Resource, restart
from installer.resources.files import File
from installer.resources.system import Command, Service
from installer.stack.context import StackContext

CONF = "/etc/mysql/mariadb.conf.d/90-barracuda.cnf"
HEALTH_USER = "www-data"


def answers(ctx: Context, attempts: int = 60) -> str | None:
    for _ in range(attempts):
        with contextlib.suppress(DatabaseError):
            if sql.scalar(ctx.runner, "SELECT 1") == "1":
                return None
        time.sleep(0.5)
    return "MariaDB does not answer SELECT 1 over its socket"


def root_password_is(password: str, socket: str) -> Callable[[Context], bool]:
    """True when the root account accepts `password` (checked as a user that the unix_socket
    plugin cannot authenticate as root, so only the password can let it in)."""

    def done(ctx: Context) -> bool:
        result = ctx.runner.run(
            ["runuser", "-u", "nobody", "--", "mariadb", "--no-defaults", "-u", "root",
             f"--socket={socket}", "-e", "SELECT 1"],
            env={"MYSQL_PWD": password}, check=False, timeout=30,
        )
        return result.ok

    return done


def has_health_user(ctx: Context) -> bool:
    try:
        return sql.user_exists(ctx.runner, HEALTH_USER)
    except DatabaseError:
        return False


def component(stack: StackContext) -> Component:
    service = stack.release.service("mariadb")
    context = stack.template_context()
    resources: list[Resource] = [
        File(CONF, template="mariadb/barracuda.cnf.j2", context=context,
             notify=(restart(service),), requires=("packages:stack",)),
        Service(service, requires=("packages:stack",)),
    ]
    return Component(
        "mariadb", resources,
        validators=[Validator(["mariadbd", "--verbose", "--help"], "mariadbd option check")],
        health=[answers],
    )


def accounts_component(stack: StackContext) -> Component:
    password = stack.mariadb_root_password
    socket = stack.paths["mysqld_socket"]
    set_root = sql.script(sql.root_by_socket_or_password(password))
    health_user = sql.script([sql.socket_user(HEALTH_USER)])
    return Component("mariadb-accounts", [
        Command("mariadb-root-password", ["mariadb", "--batch"], done=root_password_is(password,
                socket), why="the root account does not have the kept password",
                input=lambda ctx: set_root),
        File("/root/.my.cnf", template="mariadb/root-my.cnf.j2", context=stack.template_context(),
             mode=0o600, secret=True, requires=("command:mariadb-root-password",)),
        Command("mariadb-health-user", ["mariadb", "--batch"], done=has_health_user,
                why=f"no '{HEALTH_USER}'@'localhost' account for the health check",
                input=lambda ctx: health_user),
    ])
