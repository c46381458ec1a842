"""POSIX ACL entries of one user on one path (setfacl/getfacl from Debian's acl): how a
client account reaches exactly the sites it was granted, while the instance's Unix group
stays the instance's. Under --root they are planned, not executed."""

from __future__ import annotations

from dataclasses import dataclass

from installer.resources.base import Change, Context, Resource

TOOLS = "packages:access"


def parse_entries(text: str, user: str) -> tuple[str, str]:
    """(access, default) permissions of `user` in getfacl's output; "" when absent."""
    access = default = ""
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry.startswith(f"user:{user}:"):
            access = entry.rsplit(":", 1)[1]
        elif entry.startswith(f"default:user:{user}:"):
            default = entry.rsplit(":", 1)[1]
    return access, default


@dataclass
class Acl(Resource):
    """`user` has `perms` ("r-x", "--x", "rwx") on `path`, or no entry at all when perms is
    "". `tree`: the whole tree below too (symbolic links skipped, never followed), with a
    default entry so what is created there later gets it as well."""

    changes_environment = True

    path: str
    user: str
    perms: str = ""
    tree: bool = False

    @property
    def id(self) -> str:
        return f"acl:{self.user}:{self.path}"

    @property
    def ok_reason(self) -> str:
        if not self.perms:
            return f"no entry for {self.user}"
        return f"{self.user} has {self.perms}" + (" on the tree below" if self.tree else "")

    def _current(self, ctx: Context) -> tuple[str, str]:
        result = ctx.runner.run(["getfacl", "--absolute-names", "--omit-header", "--",
                                 self.path], check=False, timeout=60)
        return parse_entries(result.stdout, self.user) if result.ok else ("", "")

    def check(self, ctx: Context) -> list[Change]:
        exists = ctx.target.path(self.path).exists()
        if not ctx.target.live:
            return [self.live_change(ctx, "grant", f"{self.user}: {self.perms}")] \
                if self.perms else []
        if not exists:
            return [self.change("grant", f"{self.user}: {self.perms} (once it exists)")] \
                if self.perms else []
        access, default = self._current(ctx)
        if not self.perms:
            if access or default:
                return [self.change("revoke", f"{self.user} has {access or default}, "
                                              "no longer granted")]
            return []
        if access != self.perms or (self.tree and default != self.perms):
            return [self.change("grant", f"{self.user}: {access or 'none'} -> {self.perms}")]
        return []

    def _set(self, ctx: Context, perms: str) -> None:
        walk = ["-P", "-R"] if self.tree else ["-P"]
        if perms:
            spec = f"u:{self.user}:{perms.replace('x', 'X') if self.tree else perms}"
            if self.tree:
                spec += f",d:u:{self.user}:{perms}"
            ctx.runner.run(["setfacl", *walk, "-m", spec, "--", self.path], timeout=600)
        else:
            spec = f"u:{self.user}" + (f",d:u:{self.user}" if self.tree else "")
            ctx.runner.run(["setfacl", *walk, "-x", spec, "--", self.path], timeout=600)

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live or not ctx.target.path(self.path).exists():
            return
        before, _ = self._current(ctx)
        self._set(ctx, self.perms)
        ctx.journal.did(f"{'granted' if self.perms else 'revoked'} {self.user} on {self.path}",
                        lambda: self._set(ctx, before))
