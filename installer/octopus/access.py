"""Tenant access to an instance: its FTP user (oN.ftp) and its clients (oN.NAME), their SSH
keys, the sites each client was granted, and what each account reaches in the limited shell,
over SFTP and with Drush (profiles/access.yml; the machine's sshd is installer/stack/ssh.py).

Records: /data/disk/oN/config/access/ACCOUNT.yml (root, 0600), the desired state like the
site records. Every converge of the instance renders from them:
* the client accounts (group oN.NAME, user oN.NAME in the access group, its home root's,
  the limited shell as login shell); oN.ftp gets the limited shell too;
* each account's authorized keys (root's file, read by sshd's Match Group block);
* each account's map (account.json: the paths it may use, its sites) and Drush aliases;
* POSIX ACLs: a client may pass through the instance's platforms and sites/ directories
  (never list them), read its site's directory and write its files/ and private/ trees;
  every site it was not granted has no entry for it.
A client is never in the instance's group: that group reads every site of the instance."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import yaml

from installer.config.text import shown
from installer.data import load_profile
from installer.errors import ConfigError, UsageError
from installer.facts import Facts
from installer.octopus.model import Instance, SiteRecord
from installer.resources.accounts import Group, GroupAbsent, User, UserAbsent
from installer.resources.acl import Acl
from installer.resources.base import Resource
from installer.resources.files import Absent, Directory, File
from installer.resources.trees import TreeAbsent
from installer.target import Target

FTP = "ftp"
CLIENT = "client"


def profile() -> dict[str, Any]:
    return load_profile("access")


def shell_path() -> str:
    return str(profile()["shell_program"])


def access_group() -> str:
    return str(profile()["group"])


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class Key:
    kind: str
    blob: str
    comment: str = ""

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    def line(self) -> str:
        return " ".join(p for p in (str(profile()["key_options"]), self.kind, self.blob,
                                    self.comment) if p)


def parse_key(text: str, source: str) -> Key:
    """One OpenSSH public key (TYPE BASE64 [COMMENT]); options before it are refused (ours
    are written in front of every key)."""
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    types = [str(t) for t in profile()["key_types"]]
    expected = f"expected one OpenSSH public key line ({', '.join(types[:3])} ...)"
    if len(lines) != 1:
        raise ConfigError(f"{source}: {expected}, found {len(lines)} lines")
    words = lines[0].split(None, 2)
    if len(words) < 2 or words[0] not in types:
        raise ConfigError(f"{source}: {expected}; options before the key are not accepted")
    kind, blob = words[0], words[1]
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source}: the key is not valid base64; {expected}") from None
    # The blob starts with its own type name (a length-prefixed string).
    if len(raw) < 4 or raw[4:4 + int.from_bytes(raw[:4], "big")] != kind.encode():
        raise ConfigError(f"{source}: the key's data does not match its type {kind}")
    comment = words[2] if len(words) > 2 else ""
    if re.search(r"[\x00-\x1f\x7f]", comment):
        raise ConfigError(f"{source}: control characters in the key's comment")
    return Key(kind, blob, comment[:200])


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class AccessRecord:
    account: str  # oN.ftp or oN.NAME
    kind: str  # ftp or client
    email: str = ""
    sites: tuple[str, ...] = ()  # a client's granted sites; the FTP user has every site
    keys: tuple[dict[str, str], ...] = ()  # {kind, blob, comment}

    @property
    def key_list(self) -> list[Key]:
        return [Key(**k) for k in self.keys]

    def dump(self) -> str:
        data = asdict(self)
        data["sites"] = list(self.sites)
        data["keys"] = [dict(k) for k in self.keys]
        return yaml.safe_dump(data, sort_keys=True)


def records_dir(instance: Instance) -> str:
    return f"{instance.root}/config/access"


def record_path(instance: Instance, account: str) -> str:
    return f"{records_dir(instance)}/{account}.yml"


def read_records(target: Target, instance: Instance) -> list[AccessRecord]:
    directory = target.path(records_dir(instance))
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.yml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            data["sites"] = tuple(data.get("sites") or ())
            data["keys"] = tuple(dict(k) for k in data.get("keys") or ())
            found.append(AccessRecord(**data))
        except (OSError, yaml.YAMLError, TypeError, AttributeError) as exc:
            raise ConfigError(f"unreadable record ({exc}); restore it from the last "
                              "checkpoint in /var/backups/barracuda/checkpoints",
                              path=str(path)) from None
    return found


@dataclass(frozen=True)
class AccessState:
    """An instance's access records, and the files of earlier runs (to remove the stale)."""

    records: list[AccessRecord] = field(default_factory=list)
    alias_files: dict[str, list[str]] = field(default_factory=dict)  # account -> paths

    def record(self, account: str) -> AccessRecord | None:
        return next((r for r in self.records if r.account == account), None)

    def clients(self) -> list[AccessRecord]:
        return [r for r in self.records if r.kind == CLIENT]


def account_dir(account: str) -> str:
    return f"{profile()['access_dir']}/{account}"


def load(target: Target, instance: Instance) -> AccessState:
    records = read_records(target, instance)
    accounts = [instance.ftp_user, *(r.account for r in records if r.kind == CLIENT)]
    files = {}
    for account in accounts:
        drush = target.path(f"{account_dir(account)}/drush")
        files[account] = sorted(f"{account_dir(account)}/drush/{p.name}"
                                for p in drush.glob("*.site.yml")) if drush.is_dir() else []
    return AccessState(records, files)


# --------------------------------------------------------------------------- names


def client_account(instance: str, name: str) -> str:
    return f"{instance}.{name}"


def check_client_name(name: str) -> str:
    rules = profile()["names"]
    if not re.fullmatch(str(rules["client_pattern"]), name):
        raise ConfigError(f"bad client name {shown(name, 30)}: expected a lowercase letter, "
                          "then letters and digits, at most 16 characters (for example acme)")
    if name in rules["reserved_clients"]:
        raise ConfigError(f"bad client name {shown(name)}: it is reserved")
    return name


# --------------------------------------------------------------------------- desired state


@dataclass(frozen=True)
class Account:
    """One shell account of the instance and what it reaches."""

    name: str
    kind: str
    home: str
    sites: list[SiteRecord]
    keys: list[Key]


def accounts_of(instance: Instance, sites: Sequence[SiteRecord],
                access: AccessState) -> list[Account]:
    ftp = access.record(instance.ftp_user)
    found = [Account(instance.ftp_user, FTP, instance.ftp_home, list(sites),
                     ftp.key_list if ftp else [])]
    by_domain = {s.domain: s for s in sites}
    for record in access.clients():
        granted = [by_domain[d] for d in record.sites if d in by_domain]
        found.append(Account(record.account, CLIENT, f"/home/{record.account}", granted,
                             record.key_list))
    return found


def site_paths(instance: Instance, site: SiteRecord) -> dict[str, str]:
    return {"root": instance.docroot(site.platform, site.docroot),
            "dir": instance.site_dir(site), "uri": f"https://{site.domain}"}


def account_map(instance: Instance, account: Account) -> dict[str, Any]:
    """What the limited shell and the Drush helper read: the account's paths and sites."""
    if account.kind == FTP:
        roots = [account.home, f"{instance.root}/platforms", f"{instance.root}/static"]
    else:
        roots = [account.home, *(instance.site_dir(s) for s in account.sites)]
    return {"account": account.name, "instance": instance.name, "kind": account.kind,
            "home": account.home, "roots": roots,
            "sites": {s.domain: site_paths(instance, s) for s in account.sites}}


def alias_yaml(instance: Instance, site: SiteRecord) -> str:
    paths = site_paths(instance, site)
    return yaml.safe_dump({"root": paths["root"], "uri": paths["uri"]}, sort_keys=True)


def account_files(instance: Instance, account: Account, known: list[str]) -> list[Resource]:
    """The account's keys, map and Drush aliases (root's; stale aliases removed)."""
    prof = profile()
    keys = f"{prof['keys_dir']}/{account.name}"
    directory = account_dir(account.name)
    resources: list[Resource] = [
        File(keys, content="".join(k.line() + "\n" for k in account.keys), mode=0o644)
        if account.keys else Absent(keys, why="the account has no key"),
        Directory(directory, mode=0o755),
        File(f"{directory}/account.json", mode=0o644, comment="",
             content=json.dumps(account_map(instance, account), indent=1, sort_keys=True)
             + "\n"),
        Directory(f"{directory}/drush", mode=0o755),
    ]
    wanted = {f"{directory}/drush/{s.domain}.site.yml": s for s in account.sites}
    resources += [File(path, content=alias_yaml(instance, site), mode=0o644)
                  for path, site in wanted.items()]
    resources += [Absent(path, why="the site is no longer the account's")
                  for path in known if path not in wanted]
    return resources


def client_user(account: str) -> list[Resource]:
    group = Group(account)
    return [group,
            User(account, home=f"/home/{account}", primary=account,
                 groups=(access_group(),), login_shell=shell_path(),
                 requires=(group.id, f"group:{access_group()}")),
            Directory(f"/home/{account}", mode=0o750, owner="root", fgroup=account,
                      requires=(f"user:{account}",))]


def grants(instance: Instance, sites: Sequence[SiteRecord], account: str,
           granted: Sequence[str]) -> list[Resource]:
    """The ACL entries of one client on every site of the instance: the granted ones opened,
    every other one closed (a revoke takes effect in the same run)."""
    writable = [str(d) for d in profile()["client_writable"]]
    mine = [s for s in sites if s.domain in granted]
    resources: list[Resource] = [
        Acl(f"{instance.root}/platforms", account, "--x" if mine else "")]
    passed: dict[str, bool] = {}
    for site in sites:
        top = instance.platform_dir(site.platform)
        docroot = instance.docroot(site.platform, site.docroot)
        on_it = any(s.platform == site.platform for s in mine)
        for path in dict.fromkeys((top, docroot, f"{docroot}/sites")):
            passed[path] = passed.get(path, False) or on_it
    resources += [Acl(path, account, "--x" if on else "") for path, on in passed.items()]
    for site in sites:
        yes = site in mine
        site_dir = instance.site_dir(site)
        resources.append(Acl(site_dir, account, "r-x" if yes else ""))
        resources += [Acl(f"{site_dir}/{d}", account, "rwx" if yes else "", tree=True)
                      for d in writable]
    return resources


def components(instance: Instance, sites: Sequence[SiteRecord],
               access: AccessState) -> tuple[list[Resource], list[Resource]]:
    """(the accounts, their files and grants): the instance's converge puts the first with
    its accounts and the second after its sites' directories."""
    users: list[Resource] = []
    files: list[Resource] = [Directory(records_dir(instance), mode=0o700)]
    for record in access.records:
        files.append(File(record_path(instance, record.account), mode=0o600,
                          content=replace(record, sites=tuple(
                              d for d in record.sites if any(s.domain == d for s in sites))
                          ).dump()))
    for account in accounts_of(instance, sites, access):
        if account.kind == CLIENT:
            users += client_user(account.name)
            files += grants(instance, sites, account.name, [s.domain for s in account.sites])
        files += account_files(instance, account, access.alias_files.get(account.name, []))
    return users, files


def removal(instance: Instance, sites: Sequence[SiteRecord], account: str) -> list[Resource]:
    """A client taken away: its grants, files, user, group and home."""
    prof = profile()
    return [*grants(instance, sites, account, []),
            Absent(record_path(instance, account), why="the client is removed"),
            Absent(f"{prof['keys_dir']}/{account}", why="the client is removed"),
            TreeAbsent(account_dir(account), why="the client is removed"),
            UserAbsent(account), GroupAbsent(account),
            TreeAbsent(f"/home/{account}", why="the client is removed")]


def instance_removal(instance: Instance, access: AccessState) -> list[Resource]:
    """Everything of the instance's tenant accounts outside its tree, when it is removed."""
    prof = profile()
    resources: list[Resource] = []
    for account in [instance.ftp_user, *(r.account for r in access.clients())]:
        resources += [Absent(f"{prof['keys_dir']}/{account}", why="the instance is removed"),
                      TreeAbsent(account_dir(account), why="the instance is removed")]
        if account != instance.ftp_user:
            resources += [UserAbsent(account), GroupAbsent(account),
                          TreeAbsent(f"/home/{account}", why="the instance is removed")]
    return resources


# --------------------------------------------------------------------------- commands


Edit = Callable[[AccessState], AccessState]  # a command's change of the records


def find_client(access: AccessState, instance: Instance, name: str) -> AccessRecord:
    account = client_account(instance.name, check_client_name(name))
    record = access.record(account)
    if record is None:
        known = " ".join(r.account.removeprefix(instance.name + ".")
                         for r in access.clients()) or "none"
        raise ConfigError(f"instance {instance.name} has no client {shown(name)} "
                          f"(clients: {known})")
    return record


def with_record(access: AccessState, record: AccessRecord) -> AccessState:
    others = [r for r in access.records if r.account != record.account]
    return replace(access, records=sorted([*others, record], key=lambda r: r.account))


def client_add(instance: Instance, name: str, email: str, facts: Facts) -> Edit:
    account = client_account(instance.name, check_client_name(name))
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise ConfigError(f"bad --email {shown(email)}: expected an address such as "
                          "ops@example.org")

    def change(access: AccessState) -> AccessState:
        existing = access.record(account)
        if existing is not None:
            if email and existing.email != email:
                return with_record(access, replace(existing, email=email))
            return access
        if facts.user(account) is not None or facts.group_id(account) is not None:
            raise ConfigError(f"cannot add client {name}: an account or group named "
                              f"{account} already exists on this machine")
        return with_record(access, AccessRecord(account, CLIENT, email))

    return change


def client_grant(instance: Instance, name: str, domain: str, sites: Sequence[SiteRecord],
                 grant: bool) -> Edit:
    if grant and not any(s.domain == domain for s in sites):
        known = " ".join(s.domain for s in sites) or "none"
        raise ConfigError(f'instance {instance.name} has no site "{domain}" (sites: {known})')

    def change(access: AccessState) -> AccessState:
        record = find_client(access, instance, name)
        if grant:
            granted = tuple(sorted({*record.sites, domain}))
        else:
            if domain not in record.sites:
                raise UsageError(f"client {name} of {instance.name} has no grant on {domain}")
            granted = tuple(d for d in record.sites if d != domain)
        return with_record(access, replace(record, sites=granted))

    return change


def key_owner(instance: Instance, who: str, access: AccessState) -> AccessRecord:
    """The record of `who` (oN for the FTP user, or oN.NAME for a client), made for the FTP
    user when it has none yet."""
    if who in (instance.name, instance.ftp_user):
        return access.record(instance.ftp_user) or AccessRecord(instance.ftp_user, FTP)
    return find_client(access, instance, who.removeprefix(instance.name + "."))


def key_add(instance: Instance, who: str, key: Key) -> Edit:
    def change(access: AccessState) -> AccessState:
        record = key_owner(instance, who, access)
        if any(k.fingerprint == key.fingerprint for k in record.key_list):
            return with_record(access, record)
        return with_record(access, replace(record, keys=(*record.keys, asdict(key))))

    return change


def key_remove(instance: Instance, who: str, fingerprint: str) -> Edit:
    def change(access: AccessState) -> AccessState:
        record = key_owner(instance, who, access)
        kept = tuple(asdict(k) for k in record.key_list if k.fingerprint != fingerprint)
        if len(kept) == len(record.keys):
            known = " ".join(k.fingerprint for k in record.key_list) or "none"
            raise ConfigError(f"{record.account} has no key {shown(fingerprint)} "
                              f"(keys: {known})")
        return with_record(access, replace(record, keys=kept))

    return change


def describe(instance: Instance, access: AccessState) -> dict[str, Any]:
    """For `octopus status` and `client list`: each account, its keys and grants."""
    rows = []
    ftp = access.record(instance.ftp_user)
    rows.append({"account": instance.ftp_user, "kind": FTP, "email": "",
                 "sites": "all", "keys": [k.fingerprint for k in ftp.key_list] if ftp else []})
    for record in access.clients():
        rows.append({"account": record.account, "kind": CLIENT, "email": record.email,
                     "sites": list(record.sites),
                     "keys": [k.fingerprint for k in record.key_list]})
    return {"accounts": rows}
