"""Linux groups and users. Under --root they are planned, not executed: accounts are made by
the distribution's tools (groupadd, useradd, usermod), which keep /etc/shadow and nscd right."""

from __future__ import annotations

import contextlib
import pwd
import time
from dataclasses import dataclass

import psutil

from installer.resources.base import Change, Context, Resource
from installer.runner import Runner

NO_LOGIN = "/usr/sbin/nologin"


@dataclass
class Group(Resource):
    changes_environment = True

    name: str
    system: bool = True

    @property
    def id(self) -> str:
        return f"group:{self.name}"

    @property
    def ok_reason(self) -> str:
        return "exists"

    def check(self, ctx: Context) -> list[Change]:
        if ctx.facts.group_id(self.name) is not None:
            return []
        return [self.live_change(ctx, "create", "missing")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if ctx.target.live:
            ctx.runner.run(["groupadd", *(["--system"] if self.system else []), self.name],
                           timeout=60)
            runner, name = ctx.runner, self.name
            ctx.journal.did(f"created group {name}",
                            lambda: runner.run(["groupdel", name], timeout=60))


@dataclass
class User(Resource):
    """An account with its primary group, supplementary groups, home and shell. The home
    directory itself is a Directory resource of its own (its mode and owner are converged
    there); useradd never copies /etc/skel into it."""

    changes_environment = True

    name: str
    home: str
    primary: str
    groups: tuple[str, ...] = ()
    login_shell: str = NO_LOGIN
    system: bool = True

    @property
    def id(self) -> str:
        return f"user:{self.name}"

    @property
    def ok_reason(self) -> str:
        extra = f", in {','.join(self.groups)}" if self.groups else ""
        return (f"exists with home {self.home}, group {self.primary}{extra}, "
                f"shell {self.login_shell}")

    def _missing_groups(self, ctx: Context) -> list[str]:
        missing = []
        for group in self.groups:
            members = ctx.facts.group_members(group) or ()
            if self.name not in members:
                missing.append(group)
        return missing

    def check(self, ctx: Context) -> list[Change]:
        account = ctx.facts.user(self.name)
        if account is None:
            return [self.live_change(ctx, "create", "missing")]
        changes = []
        if account.home != self.home:
            changes.append(self.live_change(ctx, "home", f"home {account.home} -> {self.home}"))
        if account.shell != self.login_shell:
            changes.append(self.live_change(
                ctx, "shell", f"shell {account.shell} -> {self.login_shell}"))
        if ctx.facts.group_id(self.primary) != account.gid:
            changes.append(self.live_change(ctx, "group", f"primary group -> {self.primary}"))
        missing = self._missing_groups(ctx)
        if missing:
            changes.append(self.live_change(ctx, "groups", f"not in {','.join(missing)}"))
        return changes

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        actions = {c.action for c in changes}
        if "create" in actions:
            argv = ["useradd", "--home-dir", self.home, "--no-create-home", "--gid", self.primary,
                    "--shell", self.login_shell]
            if self.system:
                argv.append("--system")
            if self.groups:
                argv += ["--groups", ",".join(self.groups)]
            ctx.runner.run([*argv, self.name], timeout=60)
            runner, name = ctx.runner, self.name
            ctx.journal.did(f"created user {name}", lambda: _remove_user(runner, name))
            return
        before = ctx.facts.user(self.name)
        added = self._missing_groups(ctx) if "groups" in actions else []
        argv = ["usermod"]
        if "home" in actions:
            argv += ["--home", self.home]
        if "shell" in actions:
            argv += ["--shell", self.login_shell]
        if "group" in actions:
            argv += ["--gid", self.primary]
        if "groups" in actions:
            argv += ["--append", "--groups", ",".join(added)]
        ctx.runner.run([*argv, self.name], timeout=60)
        if before is not None:
            runner, name = ctx.runner, self.name
            back = ["usermod", "--home", before.home, "--shell", before.shell, "--gid",
                    str(before.gid), name]

            def undo() -> None:
                runner.run(back, timeout=60)
                for group in added:
                    runner.run(["gpasswd", "--delete", name, group], timeout=60)

            ctx.journal.did(f"changed user {name}", undo)


@dataclass
class GroupMember(Resource):
    """`user` is a supplementary member of `group` (e.g. the web server of an instance's
    group, so it may read the instance's code and files)."""

    changes_environment = True

    user: str
    member_of: str

    @property
    def id(self) -> str:
        return f"member:{self.user}:{self.member_of}"

    @property
    def ok_reason(self) -> str:
        return f"{self.user} is in {self.member_of}"

    def check(self, ctx: Context) -> list[Change]:
        if self.user in (ctx.facts.group_members(self.member_of) or ()):
            return []
        return [self.live_change(ctx, "add", f"{self.user} is not in {self.member_of}")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if ctx.target.live:
            ctx.runner.run(["usermod", "--append", "--groups", self.member_of, self.user],
                           timeout=60)
            runner, user, group = ctx.runner, self.user, self.member_of
            ctx.journal.did(f"added {user} to group {group}", lambda: runner.run(
                ["gpasswd", "--delete", user, group], timeout=60))


@dataclass
class UserAbsent(Resource):
    """An account that must not exist. Its processes (an instance's PHP workers finishing
    their last request) get a few seconds to exit, then are stopped; its files are not
    touched here (they were backed up and are removed as trees)."""

    changes_environment = True

    name: str
    grace_s: float = 10.0

    @property
    def id(self) -> str:
        return f"user-absent:{self.name}"

    @property
    def ok_reason(self) -> str:
        return "absent"

    def check(self, ctx: Context) -> list[Change]:
        if ctx.facts.user(self.name) is None:
            return []
        return [self.live_change(ctx, "remove", "exists")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        account = ctx.facts.user(self.name)
        if account is not None:
            stop_processes_of(account.uid, self.grace_s)
        ctx.runner.run(["userdel", self.name], timeout=60)
        ctx.journal.did(f"removed user {self.name}", None)


@dataclass
class GroupAbsent(Resource):
    changes_environment = True

    name: str

    @property
    def id(self) -> str:
        return f"group-absent:{self.name}"

    @property
    def ok_reason(self) -> str:
        return "absent"

    def check(self, ctx: Context) -> list[Change]:
        if ctx.facts.group_id(self.name) is None:
            return []
        return [self.live_change(ctx, "remove", "exists")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if ctx.target.live:
            ctx.runner.run(["groupdel", self.name], timeout=60)
            ctx.journal.did(f"removed group {self.name}", None)


def _remove_user(runner: Runner, name: str) -> None:
    """Undo a useradd: stop what the account started in the meantime (a pool's workers),
    then remove it."""
    account = pwd_uid(name)
    if account is not None:
        stop_processes_of(account, 5.0)
    runner.run(["userdel", name], timeout=60)


def pwd_uid(name: str) -> int | None:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def stop_processes_of(uid: int, grace_s: float) -> None:
    """Wait up to `grace_s` for the processes of `uid` to exit, then SIGTERM, then SIGKILL."""
    def alive() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["uids"]):
            uids = proc.info.get("uids")
            if uids is not None and uids.real == uid:
                found.append(proc)
        return found

    deadline = time.monotonic() + grace_s
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    for signal_name in ("terminate", "kill"):
        procs = alive()
        if not procs:
            return
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                getattr(proc, signal_name)()
        psutil.wait_procs(procs, timeout=3)
