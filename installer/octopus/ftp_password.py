"""FTPS logins: `octopus client passwd oN ACCOUNT` gives an instance's account (oN.ftp, or a
client's oN.NAME) a password for pure-ftpd, and nothing else (sshd refuses passwords to the
tenants' accounts; the password never reaches /etc/shadow).

The instance's record config/ftp.yml (root, 0600) maps each account to its password's hash
(yescrypt, through the distribution's libcrypt, which pure-ftpd verifies with). The server's
one logins file is rendered from the records of every instance, with each account's uid,
group and home as the system has them now (an account that no longer exists is left out),
each login chrooted to its home; `pure-pw mkdb` builds the database pure-ftpd reads."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re
from collections.abc import Mapping
from typing import Any

import yaml

from installer.config import Config
from installer.config.text import shown
from installer.errors import ConfigError, UsageError
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.components import Phase
from installer.octopus.model import Instance
from installer.plan import Builder, Component
from installer.resources.base import Resource
from installer.resources.files import File
from installer.runlog import Redactor
from installer.stack import ftp
from installer.target import Target

FTP_ACCOUNT = "ftp"  # ACCOUNT `ftp` is the instance's own login, oN.ftp
HASH = re.compile(r"\$[0-9a-z]+\$[./0-9A-Za-z$]+")
PASSWD_FIELDS = 18  # pure-ftpd's virtual users file: account:hash:uid:gid:gecos:home:...


def profile() -> dict[str, Any]:
    return ftp.profile()


# --------------------------------------------------------------------------- passwords


@functools.cache
def _libcrypt() -> Any:
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p,
                                  ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib


def _crypt(password: str, setting: bytes) -> str:
    out = _libcrypt().crypt(password.encode(), setting)
    if not out or out.startswith(b"*"):
        raise ConfigError("libcrypt could not hash the password")
    return str(out.decode())


def hash_password(password: str) -> str:
    """The password's hash, with a fresh salt from the system's random source."""
    prefix = str(profile()["password"]["hash_prefix"]).encode()
    setting = _libcrypt().crypt_gensalt(prefix, 0, None, 0)
    if not setting:
        raise ConfigError(f"libcrypt has no {prefix.decode()} hash")
    return _crypt(password, setting)


def verify(password: str, hashed: str) -> bool:
    return _crypt(password, hashed.encode()) == hashed


def check_password(password: str) -> str:
    """The password, or UsageError saying what a password must be (never showing it)."""
    rules = profile()["password"]
    low, high = int(rules["min_length"]), int(rules["max_length"])
    if not low <= len(password) <= high:
        raise UsageError(f"the password has {len(password)} characters: expected {low} to "
                         f"{high}")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise UsageError("the password has a control character (a line break, a tab ...): "
                         "expected printable characters only")
    return password


# --------------------------------------------------------------------------- accounts


def check_account_arg(name: str, account: str) -> None:
    """ACCOUNT as given: `ftp`, or a client's name."""
    if account != FTP_ACCOUNT and not re.fullmatch(str(profile()["client_pattern"]), account):
        raise UsageError(f"bad account {shown(account, 40)}: expected ftp (for {name}.ftp) or "
                         "a client's name (lowercase letters, digits and dashes, starting "
                         "with a letter)")


def account_name(facts: Facts, instance: Instance, account: str) -> str:
    """The system account `oN.ACCOUNT` (`ftp`: oN.ftp, else a client's), which must exist
    and be a tenant's login: never an instance's own or web user, nor another instance's."""
    check_account_arg(instance.name, account)
    if account == FTP_ACCOUNT:
        user = instance.ftp_user
    else:
        user = f"{instance.name}.{account}"
        for other in model.instance_names(facts.target):
            theirs = Instance(other)
            if user in (*theirs.users, theirs.secrets_group):
                raise UsageError(f"{user} is not a client's account: it is one of instance "
                                 f"{other}'s own")
    found = facts.user(user)
    if found is None:
        hint = (f"`octopus install {instance.name}` makes it" if account == FTP_ACCOUNT
                else f"add the client first: `octopus client add {instance.name} {account}`")
        raise ConfigError(f"no account {user} on this machine: {hint}")
    problem = _unfit(found.uid, found.home)
    if problem:
        raise ConfigError(f"{user} cannot have an FTPS login: {problem}")
    return user


def _unfit(uid: int, home: str) -> str:
    """Why an account may not log in (its chroot would not hold it), or ""."""
    if uid == 0:
        return "it is root's uid"
    if not home.startswith("/") or home.rstrip("/") == "" or re.search(r"[:\s]|/\.\.?(/|$)",
                                                                       home):
        return f"its home {shown(home)} is not a directory it can be chrooted to"
    return ""


# --------------------------------------------------------------------------- records


def record_path(instance: Instance) -> str:
    return f"{instance.root}/{profile()['record']}"


def read_logins(target: Target, instance: Instance) -> dict[str, str]:
    """The instance's recorded logins: account -> hash ({} when it has none)."""
    path = record_path(instance)
    real = target.path(path)
    if not real.is_file():
        return {}
    try:
        data = yaml.safe_load(real.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"unreadable record ({exc})", path=path) from None
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and HASH.fullmatch(v)
            for k, v in data.items()):
        raise ConfigError("expected account: password hash lines; restore it from the last "
                          "checkpoint in /var/backups/barracuda/checkpoints", path=path)
    return dict(data)


def logins_text(logins: Mapping[str, str]) -> str:
    return yaml.safe_dump(dict(sorted(logins.items())), sort_keys=True)


def passwd_text(facts: Facts, logins: Mapping[str, Mapping[str, str]]) -> str:
    """pure-ftpd's logins file: one line per recorded account that exists (instance ->
    account -> hash), each chrooted to its home (the trailing /./)."""
    lines = []
    for name in sorted(logins):
        for user, hashed in sorted(logins[name].items()):
            found = facts.user(user)
            if found is None or _unfit(found.uid, found.home):
                continue
            fields = [user, hashed, str(found.uid), str(found.gid), "",
                      found.home.rstrip("/") + "/./"]
            lines.append(":".join(fields + [""] * (PASSWD_FIELDS - len(fields))))
    return "".join(f"{line}\n" for line in lines)


def all_logins(target: Target) -> dict[str, dict[str, str]]:
    return {name: read_logins(target, Instance(name)) for name in model.instance_names(target)}


def server_resources(facts: Facts, logins: Mapping[str, Mapping[str, str]]) -> list[Resource]:
    """The server's logins file and database for `logins` (every instance's, as they will
    be after the run)."""
    prof = profile()
    passwd = File(str(prof["passwd"]), content=passwd_text(facts, logins), mode=0o600,
                  comment="", secret=True)
    return [passwd, ftp.puredb(after=(passwd.id,))]


def installed(config: Config, facts: Facts) -> None:
    """ConfigError unless the FTP server is on (FTP in _XTRAS_LIST, and installed)."""
    if not ftp.enabled(config, facts.distro.codename):
        raise ConfigError(f"FTPS is off: add {ftp.CODE} to _XTRAS_LIST in {config.path}, then "
                          "run `barracuda install`", key="_XTRAS_LIST")
    if facts.target.live and "pure-ftpd" not in facts.packages():
        raise ConfigError("pure-ftpd is not installed yet: run `barracuda install`")


# --------------------------------------------------------------------------- workflows


def set_password(name: str, account: str, password: str) -> Builder:
    """`octopus client passwd`: the account's hash recorded, the server's logins rebuilt."""

    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        redactor.add(password)
        instance = model.existing(facts.target, name)
        installed(config, facts)
        user = account_name(facts, instance, account)
        check_password(password)
        logins = all_logins(facts.target)
        mine = dict(logins.get(name, {}))
        mine[user] = hash_password(password)
        logins[name] = mine
        record = File(record_path(instance), content=logins_text(mine), mode=0o600,
                      comment="", secret=True)
        return [Component(f"{name}-ftp", [record, *server_resources(facts, logins)],
                          phase=Phase.ACCOUNTS)]

    return build


def forget(facts: Facts, instance: Instance, accounts: tuple[str, ...] = ()) -> list[Component]:
    """The server's logins without `accounts` of `instance` (all of them when none are
    named), for a run that removes the instance or those accounts; nothing when the server
    has no logins file. Its record goes with the instance's tree (a client's removal drops
    the client's line from the record too)."""
    if not facts.target.path(str(profile()["passwd"])).is_file():
        return []
    logins = all_logins(facts.target)
    resources: list[Resource] = []
    if accounts:
        kept = {k: v for k, v in logins.get(instance.name, {}).items() if k not in accounts}
        logins[instance.name] = kept
        resources.append(File(record_path(instance), content=logins_text(kept), mode=0o600,
                              comment="", secret=True))
    else:
        logins.pop(instance.name, None)
    return [Component(f"{instance.name}-ftp", [*resources, *server_resources(facts, logins)],
                      phase=Phase.CLEANUP)]


__all__ = ["account_name", "check_account_arg", "check_password", "forget", "hash_password",
           "passwd_text", "read_logins", "set_password", "verify"]
