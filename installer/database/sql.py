"""SQL for MariaDB, built in one place and run through the runner as root over the socket.

    rows = query(runner, "SELECT 1")
    execute(runner, [create_database("o1_site"), *ensure_user("o1_site", "pw")])

Identifiers are quoted with backticks, text with single quotes (backslashes and quotes
escaped): no value is ever pasted into a statement unquoted."""

from __future__ import annotations

from collections.abc import Sequence

from installer.errors import BarracudaError
from installer.runner import Runner

HOST = "localhost"
CHARSET = "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"


class DatabaseError(BarracudaError):
    """A statement failed: the message names it and the server's last words."""


def quote_name(name: str) -> str:
    """`name` as a MariaDB identifier."""
    return "`" + name.replace("`", "``") + "`"


def quote_text(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def account(user: str) -> str:
    """'user'@'localhost'."""
    return f"{quote_text(user)}@{quote_text(HOST)}"


def like_escaped(name: str) -> str:
    """`name` for a grant's database pattern: `_` and `%` match only themselves."""
    return name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def query(runner: Runner, statement: str, *, database: str | None = None,
          timeout: float = 600) -> list[list[str]]:
    """Rows of `statement` (tab-separated batch output, split; --raw: a backslash in a
    value, as in a grant's escaped database name, comes back as it is stored)."""
    argv = ["mariadb", "--batch", "--raw", "--skip-column-names", "-e", statement]
    if database is not None:
        argv.insert(1, f"--database={database}")
    result = runner.run(argv, timeout=timeout, check=False)
    if not result.ok:
        raise DatabaseError(f"query failed ({statement[:60]}): {_server_said(result.output)}")
    return [line.split("\t") for line in result.stdout.splitlines() if line]


def script(statements: Sequence[str]) -> str:
    """`statements` as one client script (what `mariadb --batch` reads on stdin)."""
    return "".join(s.rstrip().rstrip(";") + ";\n" for s in statements)


def execute(runner: Runner, statements: Sequence[str], *, timeout: float = 600) -> None:
    """Run `statements` in one client session; DatabaseError naming the first line."""
    result = runner.run(["mariadb", "--batch"], input=script(statements), timeout=timeout,
                        check=False)
    if not result.ok:
        first = statements[0].split("IDENTIFIED")[0] if statements else ""
        raise DatabaseError(f"{first.strip()[:80]}: {_server_said(result.output)}")


def _server_said(output: str) -> str:
    """The client's error line (ERROR 1141 ... at line 1), else its last line, in one line."""
    lines = [line.strip() for line in output.splitlines() if line.strip().strip("-")]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1][:300]


def scalar(runner: Runner, statement: str) -> str:
    rows = query(runner, statement)
    return rows[0][0] if rows and rows[0] else ""


# ------------------------------------------------------------------------ facts


def database_exists(runner: Runner, database: str) -> bool:
    return scalar(runner, "SELECT COUNT(*) FROM information_schema.SCHEMATA "
                          f"WHERE SCHEMA_NAME = {quote_text(database)}") == "1"


def user_exists(runner: Runner, user: str) -> bool:
    return scalar(runner, "SELECT COUNT(*) FROM mysql.global_priv WHERE "
                          f"User = {quote_text(user)} AND Host = {quote_text(HOST)}") == "1"


def user_auth(runner: Runner, user: str) -> str:
    """The account's stored password hash ("" when it has none or does not exist)."""
    return scalar(runner, "SELECT JSON_VALUE(Priv, '$.authentication_string') FROM "
                          f"mysql.global_priv WHERE User = {quote_text(user)} AND "
                          f"Host = {quote_text(HOST)}").replace("NULL", "")


def granted_databases(runner: Runner, user: str) -> set[str]:
    """The database patterns `user` holds privileges on (as stored: `_` escaped)."""
    rows = query(runner, "SELECT Db FROM mysql.db WHERE "
                         f"User = {quote_text(user)} AND Host = {quote_text(HOST)}")
    return {row[0] for row in rows}


def logs_in(runner: Runner, user: str, password: str, database: str = "",
            socket: str = "") -> bool:
    """True when `user` logs in with `password` (and may use `database`, when given)."""
    argv = ["mariadb", "--no-defaults", "-u", user]
    if socket:
        argv.insert(2, f"--socket={socket}")
    if database:
        argv += ["-D", database]
    result = runner.run([*argv, "-e", "SELECT 1"], env={"MYSQL_PWD": password}, check=False,
                        timeout=30)
    return result.ok


def row_counts(runner: Runner, database: str) -> dict[str, int]:
    """COUNT(*) of every base table of `database` (exact, not the InnoDB estimate)."""
    tables = [r[0] for r in query(
        runner, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                f"TABLE_SCHEMA = {quote_text(database)} AND TABLE_TYPE = 'BASE TABLE' "
                "ORDER BY TABLE_NAME")]
    if not tables:
        return {}
    union = " UNION ALL ".join(
        f"SELECT {quote_text(t)}, COUNT(*) FROM {quote_name(database)}.{quote_name(t)}"
        for t in tables)
    return {r[0]: int(r[1]) for r in query(runner, union, timeout=3600)}


# ------------------------------------------------------------------------ statements


def create_database(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {quote_name(database)} {CHARSET}"


def drop_database(database: str) -> str:
    return f"DROP DATABASE IF EXISTS {quote_name(database)}"


def ensure_user(user: str, password: str) -> list[str]:
    """The account exists and has exactly `password`."""
    return [f"CREATE USER IF NOT EXISTS {account(user)}",
            f"ALTER USER {account(user)} IDENTIFIED BY {quote_text(password)}"]


def restore_auth(user: str, auth: str) -> str:
    """Give the account back the password hash it had (from user_auth)."""
    return f"ALTER USER {account(user)} IDENTIFIED BY PASSWORD {quote_text(auth)}"


def root_by_socket_or_password(password: str) -> list[str]:
    """root logs in as the system's root over the socket, or anywhere with `password`."""
    return [f"ALTER USER {account('root')} IDENTIFIED VIA unix_socket OR "
            f"mysql_native_password USING PASSWORD({quote_text(password)})",
            "FLUSH PRIVILEGES"]


def socket_user(user: str) -> str:
    """An account the system user of the same name logs into over the socket, no password."""
    return f"CREATE USER IF NOT EXISTS {account(user)} IDENTIFIED VIA unix_socket"


def drop_user(user: str) -> str:
    return f"DROP USER IF EXISTS {account(user)}"


def grant_all(user: str, database: str) -> str:
    """All privileges on exactly `database` (no pattern: `_` matches only itself)."""
    return f"GRANT ALL PRIVILEGES ON {quote_name(like_escaped(database))}.* TO {account(user)}"


def grant_pattern(user: str, pattern: str) -> str:
    """Give back a grant stored as `pattern` (as granted_databases returns it)."""
    return f"GRANT ALL PRIVILEGES ON {quote_name(pattern)}.* TO {account(user)}"


def revoke_all(user: str, pattern: str) -> str:
    """Take back the grant stored as `pattern` (as granted_databases returns it)."""
    return f"REVOKE ALL PRIVILEGES ON {quote_name(pattern)}.* FROM {account(user)}"
