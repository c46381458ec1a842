"""`octopus client ...` and `octopus key ...`: an instance's clients, their grants and the
SSH keys of its FTP user and clients (installer/octopus/access.py). `register(app)` adds
the two sub-apps; other modules add commands to `client_app` (e.g. `client passwd`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from installer.cli import options as opt
from installer.cli.app import App, application
from installer.cli.octopus_run import converge
from installer.config.text import shown
from installer.errors import ConfigError, UsageError
from installer.octopus import access, clients, model
from installer.octopus.names import check_instance_name
from installer.target import Target

client_app = typer.Typer(no_args_is_help=True,
                         help="An instance's clients (accounts oN.NAME) and their sites.")
key_app = typer.Typer(no_args_is_help=True,
                      help="SSH keys of an instance's FTP user (oN) or of a client (oN.NAME).")

NAME = typer.Argument(..., help="The instance, e.g. o1.")
CLIENT = typer.Argument(..., help="The client's name (its account is oN.NAME).")
DOMAIN = typer.Argument(..., help="A site of the instance.")
ACCOUNT = typer.Argument(..., help="oN for the instance's FTP user, oN.NAME for a client.")
KEY_FILE = typer.Argument(..., help="A file with one OpenSSH public key.")
KEY_OR_FP = typer.Argument(..., help="The key's file, or its SHA256: fingerprint.")
EMAIL = typer.Option("", "--email", help="The client's address.")

CONVERGE = opt.takes(*opt.CONVERGE)
READ = opt.takes("json", "root")


@client_app.command("add", cls=CONVERGE)
def client_add(ctx: typer.Context, name: str = NAME, client: str = CLIENT,
               email: str = EMAIL) -> None:
    """Add client NAME to the instance: account oN.NAME, SSH keys only, no site yet."""
    check_instance_name(name)
    access.check_client_name(client)
    converge(application(ctx), name, "client-add", clients.client_add(name, client, email))


@client_app.command("grant", cls=CONVERGE)
def client_grant(ctx: typer.Context, name: str = NAME, client: str = CLIENT,
                 domain: str = DOMAIN) -> None:
    """Let the client reach one site: its files over SFTP and the shell, its Drush alias."""
    check_instance_name(name)
    converge(application(ctx), name, "client-grant",
             clients.client_grant(name, client, domain, True))


@client_app.command("revoke", cls=CONVERGE)
def client_revoke(ctx: typer.Context, name: str = NAME, client: str = CLIENT,
                  domain: str = DOMAIN) -> None:
    """Take a site away from the client (at once: its access entries are removed)."""
    check_instance_name(name)
    converge(application(ctx), name, "client-revoke",
             clients.client_grant(name, client, domain, False))


@client_app.command("remove", cls=CONVERGE)
def client_remove(ctx: typer.Context, name: str = NAME, client: str = CLIENT) -> None:
    """Remove the client: its grants, keys, account and home."""
    check_instance_name(name)
    converge(application(ctx), name, "client-remove", clients.client_remove(name, client))


def access_report(target: Target, instance: model.Instance) -> dict[str, Any]:
    return {"instance": instance.name,
            **access.describe(instance, access.load(target, instance))}


@client_app.command("list", cls=READ)
def client_list(ctx: typer.Context, name: str = NAME) -> None:
    """The instance's FTP user and clients: e-mail, sites, key fingerprints."""
    this = application(ctx)
    target = Target(this.root)
    report = access_report(target, model.existing(target, name))
    if this.json:
        this.emit_json(report)
        return
    for line in access_lines(report["accounts"]):
        print(line)


def access_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per account (for `client list` and `octopus status`)."""
    lines = []
    for row in rows:
        sites = row["sites"] if row["sites"] == "all" else " ".join(row["sites"]) or "none"
        email = f" <{row['email']}>" if row["email"] else ""
        lines.append(f"{row['account']:<20} {row['kind']:<6}{email} sites {sites}, "
                     f"{len(row['keys'])} keys")
        lines += [f"    key {fingerprint}" for fingerprint in row["keys"]]
    return lines


def _account(app: App, who: str) -> tuple[str, str]:
    """(instance, account word) of oN / oN.ftp / oN.NAME."""
    names = model.instance_names(Target(app.root))
    if who in names:
        return who, who
    head, _, tail = who.rpartition(".")
    if head in names and tail:
        if tail != "ftp":
            access.check_client_name(tail)
        return head, who
    raise ConfigError(f"unknown account {shown(who, 40)}: expected oN (an instance's FTP "
                      "user) or oN.NAME (a client of instance oN)")


def _key(path: Path) -> access.Key:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the key file {path}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    return access.parse_key(text, str(path))


@key_app.command("add", cls=CONVERGE)
def key_add(ctx: typer.Context, who: str = ACCOUNT, key_file: Path = KEY_FILE) -> None:
    """Let the key in for the account (over SSH: the limited shell and SFTP)."""
    this = application(ctx)
    name, account = _account(this, who)
    key = _key(key_file)
    converge(this, name, "key-add",
             clients.changing(name, access.key_add(model.Instance(name), account, key)))


@key_app.command("remove", cls=CONVERGE)
def key_remove(ctx: typer.Context, who: str = ACCOUNT, key: str = KEY_OR_FP) -> None:
    """Refuse the key from now on."""
    this = application(ctx)
    name, account = _account(this, who)
    fingerprint = key if key.startswith("SHA256:") else _key(Path(key)).fingerprint
    converge(this, name, "key-remove", clients.changing(
        name, access.key_remove(model.Instance(name), account, fingerprint)))


@key_app.command("list", cls=READ)
def key_list(ctx: typer.Context, who: str = ACCOUNT) -> None:
    """The account's keys: type, fingerprint, comment."""
    this = application(ctx)
    name, account = _account(this, who)
    instance = model.Instance(name)
    state = access.load(Target(this.root), instance)
    record = access.key_owner(instance, account, state)
    rows = [{"type": k.kind, "fingerprint": k.fingerprint, "comment": k.comment}
            for k in record.key_list]
    if this.json:
        this.emit_json({"account": record.account, "keys": rows})
        return
    if not rows:
        print("no keys")
    for row in rows:
        print(f"{row['type']:<12} {row['fingerprint']}  {row['comment']}")


def register(app: typer.Typer) -> None:
    app.add_typer(client_app, name="client")
    app.add_typer(key_app, name="key")
