"""MariaDB: a tuned drop-in, the service, root access through /root/.my.cnf with a kept
generated password, and the web user's password-less (unix_socket) account for /health."""

from __future__ import annotations

import time
from collections.abc import Callable

from installer.plan import Component, Validator
from installer.resources.base import Context, Resource
from installer.resources.files import File
from installer.resources.system import Command, Service
from installer.stack.context import StackContext

CONF = "/etc/mysql/mariadb.conf.d/90-barracuda.cnf"
HEALTH_USER = "www-data"


def _sql(ctx: Context, query: str) -> str | None:
    """Run `query` as the root account over the socket; None when the server is down."""
    result = ctx.runner.run(["mariadb", "--batch", "--skip-column-names", "-e", query],
                            check=False, timeout=30)
    return result.stdout.strip() if result.ok else None


def answers(ctx: Context, attempts: int = 60) -> str | None:
    for _ in range(attempts):
        if _sql(ctx, "SELECT 1") == "1":
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
    found = _sql(ctx, "SELECT COUNT(*) FROM mysql.global_priv "
                      f"WHERE User='{HEALTH_USER}' AND Host='localhost'")
    return found == "1"


def component(stack: StackContext) -> Component:
    service = stack.release.service("mariadb")
    context = stack.template_context()
    resources: list[Resource] = [
        File(CONF, template="mariadb/barracuda.cnf.j2", context=context,
             notify=(f"restart:{service}",), requires=("packages:stack",)),
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
    set_root = (
        "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket "
        f"OR mysql_native_password USING PASSWORD('{password}');\nFLUSH PRIVILEGES;\n"
    )
    health_user = (
        f"CREATE USER IF NOT EXISTS '{HEALTH_USER}'@'localhost' IDENTIFIED VIA unix_socket;\n"
    )
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
