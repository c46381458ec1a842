"""Linux groups and users. Under --root they are planned, not executed: accounts are made by
the distribution's tools (groupadd, useradd, usermod), which keep /etc/shadow and nscd right."""

from __future__ import annotations

from dataclasses import dataclass

from installer.resources.base import Change, Context, Resource

NO_LOGIN = "/usr/sbin/nologin"


@dataclass
class Group(Resource):
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
        live = ctx.target.live
        return [self.change("create", "missing" if live else "missing (planned only under --root)",
                            executed=live)]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if ctx.target.live:
            ctx.runner.run(["groupadd", *(["--system"] if self.system else []), self.name],
                           timeout=60)


@dataclass
class User(Resource):
    """An account with its primary group, supplementary groups, home and shell. The home
    directory itself is a Directory resource of its own (its mode and owner are converged
    there); useradd never copies /etc/skel into it."""

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
        live = ctx.target.live
        suffix = "" if live else " (planned only under --root)"
        account = ctx.facts.user(self.name)
        if account is None:
            return [self.change("create", f"missing{suffix}", executed=live)]
        changes = []
        if account.home != self.home:
            changes.append(self.change("home", f"home {account.home} -> {self.home}{suffix}",
                                       executed=live))
        if account.shell != self.login_shell:
            changes.append(self.change(
                "shell", f"shell {account.shell} -> {self.login_shell}{suffix}", executed=live))
        if ctx.facts.group_id(self.primary) != account.gid:
            changes.append(self.change("group", f"primary group -> {self.primary}{suffix}",
                                       executed=live))
        missing = self._missing_groups(ctx)
        if missing:
            changes.append(self.change("groups", f"not in {','.join(missing)}{suffix}",
                                       executed=live))
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
            return
        argv = ["usermod"]
        if "home" in actions:
            argv += ["--home", self.home]
        if "shell" in actions:
            argv += ["--shell", self.login_shell]
        if "group" in actions:
            argv += ["--gid", self.primary]
        if "groups" in actions:
            argv += ["--append", "--groups", ",".join(self._missing_groups(ctx))]
        ctx.runner.run([*argv, self.name], timeout=60)
