"""`octopus client passwd oN ACCOUNT`: the FTPS password of an instance's account (ACCOUNT
`ftp` for oN.ftp, or a client's NAME for oN.NAME), asked twice on a terminal, or read from
--password-file (`-` is standard input) or from standard input when it is not a terminal.
The password is never an argument, never echoed and never logged."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Optional

import typer

from installer.cli import options as opt
from installer.cli.app import application
from installer.cli.octopus_run import converge
from installer.errors import UsageError
from installer.octopus import ftp_password
from installer.octopus.names import check_instance_name

NAME = typer.Argument(..., help="The instance, e.g. o1.")
ACCOUNT = typer.Argument(..., help="ftp (the instance's oN.ftp) or a client's NAME (oN.NAME).")
PASSWORD_FILE = typer.Option(None, "--password-file", metavar="FILE",
                             help="Read the password from the first line of FILE (- for "
                                  "standard input) instead of asking twice.")


def _first_line(text: str, where: str) -> str:
    line = text.split("\n", 1)[0].removesuffix("\r")
    if not line:
        raise UsageError(f"{where}: no password on the first line")
    return line


def read_password(password_file: Optional[Path], prompt: str) -> str:
    """The password: from the file, from a piped standard input, or typed twice."""
    if password_file is not None and str(password_file) != "-":
        if not password_file.is_file():
            raise UsageError(f"--password-file {password_file}: no such file")
        try:
            text = password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--password-file {password_file}: unreadable "
                             f"({type(exc).__name__})") from None
        return _first_line(text, f"--password-file {password_file}")
    if password_file is not None or not sys.stdin.isatty():
        return _first_line(sys.stdin.readline(), "standard input")
    first = getpass.getpass(f"{prompt}: ")
    if getpass.getpass("The same again: ") != first:
        raise UsageError("the two passwords differ: nothing was changed")
    return first


def passwd(ctx: typer.Context, name: str = NAME, account: str = ACCOUNT,
           password_file: Optional[Path] = PASSWORD_FILE) -> None:
    """Set the FTPS password of ACCOUNT of instance NAME (FTPS only: SSH takes keys)."""
    check_instance_name(name)
    ftp_password.check_account_arg(name, account)
    app = application(ctx)
    user = f"{name}.{account}"
    password = ftp_password.check_password(
        read_password(password_file, f"FTPS password for {user}"))
    converge(app, name, "client-passwd", ftp_password.set_password(name, account, password))


def register(client: typer.Typer) -> None:
    client.command("passwd", cls=opt.takes(*opt.CONVERGE))(passwd)
