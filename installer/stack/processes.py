"""Processes of other users are invisible (issue 12, hole 6: `ps` showed every process of
every user, with its command line and environment): /proc is mounted with
hidepid=invisible, and only the members of one group (none by default: root sees all
anyway, and so does the monitor, which runs as root) see every process.

The option is set in /etc/fstab, so the next boot mounts /proc with it: the /proc line is
added when there is none, and when there is one only its hidepid= and gid= options change
(the operator's other options, its dump and pass fields and every other line stay as they
are). It is applied live by a remount; a failed run remounts /proc as it was."""

from __future__ import annotations

from dataclasses import dataclass

from installer.data import load_profile
from installer.fileops import write_atomic
from installer.plan import Component
from installer.resources.accounts import Group
from installer.resources.base import Change, Context, Resource

FSTAB = "/etc/fstab"
MOUNTS = "/proc/self/mounts"


def proc_line(text: str) -> int | None:
    """The index of /etc/fstab's /proc line (the last one: it wins), or None."""
    found = None
    for index, line in enumerate(text.splitlines()):
        fields = line.split()
        if len(fields) >= 4 and not fields[0].startswith("#") and fields[1] == "/proc":
            found = index
    return found


def with_options(options: str, wanted: dict[str, str]) -> str:
    """`options` (comma-separated) with each key of `wanted` set to its value, in place
    when present, appended when not; `defaults` and every other option are kept."""
    out: list[str] = []
    done: set[str] = set()
    for item in options.split(","):
        key = item.split("=", 1)[0]
        if key in wanted:
            if key not in done:
                out.append(f"{key}={wanted[key]}")
                done.add(key)
            continue
        if item:
            out.append(item)
    out += [f"{key}={value}" for key, value in wanted.items() if key not in done]
    return ",".join(out)


def fstab_with(text: str, wanted: dict[str, str]) -> str:
    """/etc/fstab's text with the /proc line carrying `wanted` (added when missing)."""
    lines = text.splitlines(keepends=True)
    index = proc_line(text)
    if index is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        options = with_options("defaults", wanted)
        return f"{text}{sep}proc /proc proc {options} 0 0\n"
    line = lines[index]
    body = line.rstrip("\r\n")
    ending = line[len(body):]
    fields = body.split()
    fields[3] = with_options(fields[3], wanted)
    lines[index] = " ".join(fields) + ending
    return "".join(lines)


def mounted_options(text: str) -> dict[str, str] | None:
    """The options of the /proc mount in /proc/self/mounts' text (key -> value)."""
    found = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == "/proc" and fields[2] == "proc":
            found = dict(item.partition("=")[::2] for item in fields[3].split(","))
    return found


@dataclass
class ProcLine(Resource):
    """/etc/fstab's /proc line carries hidepid=`hidepid` and gid=`group` (the next boot
    mounts /proc so); nothing else of the file changes."""

    hidepid: str
    group: str

    @property
    def id(self) -> str:
        return "fstab:/proc"

    @property
    def ok_reason(self) -> str:
        return f"the /proc line has hidepid={self.hidepid},gid={self.group}"

    def paths(self, ctx: Context) -> list[str]:
        return [FSTAB]

    def _texts(self, ctx: Context) -> tuple[str, str]:
        path = ctx.target.path(FSTAB)
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        return text, fstab_with(text, {"hidepid": self.hidepid, "gid": self.group})

    def check(self, ctx: Context) -> list[Change]:
        text, wanted = self._texts(ctx)
        if text == wanted:
            return []
        what = "changes" if proc_line(text) is not None else "is added"
        return [self.change("edit", f"the /proc line {what}: hidepid={self.hidepid},"
                                    f"gid={self.group}")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        path = ctx.target.path(FSTAB)
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
        write_atomic(path, self._texts(ctx)[1].encode(), mode=mode)


@dataclass
class ProcMounted(Resource):
    """The live /proc mount has hidepid=`hidepid` and gid=`group` (a remount; a failed run
    remounts it as it was)."""

    hidepid: str
    group: str

    @property
    def id(self) -> str:
        return "mount:/proc"

    @property
    def ok_reason(self) -> str:
        return f"mounted with hidepid={self.hidepid},gid={self.group}"

    def _wrong(self, ctx: Context) -> str | None:
        """Why the live /proc mount is not as wanted, or None."""
        mounted = mounted_options(ctx.target.path(MOUNTS).read_text(encoding="utf-8"))
        if mounted is None:
            return "/proc is not mounted"
        if mounted.get("hidepid") not in (self.hidepid, {"invisible": "2"}.get(self.hidepid)):
            return f"/proc is mounted with hidepid={mounted.get('hidepid', 'off')}"
        gid = ctx.facts.group_id(self.group)
        if gid is not None and mounted.get("gid") != str(gid):
            return f"/proc is mounted with gid={mounted.get('gid', '0')}"
        return None

    def check(self, ctx: Context) -> list[Change]:
        if not ctx.target.live:
            return [self.live_change(ctx, "remount", "remount /proc")]
        wrong = self._wrong(ctx)
        return [self.change("remount", wrong)] if wrong else []

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        before = mounted_options(ctx.target.path(MOUNTS).read_text(encoding="utf-8")) or {}
        ctx.runner.run(["mount", "-o", f"remount,hidepid={self.hidepid},gid={self.group}",
                        "/proc"], timeout=60)
        runner = ctx.runner
        old = f"remount,hidepid={before.get('hidepid', 'off')},gid={before.get('gid', '0')}"
        ctx.journal.did(f"remounted /proc with hidepid={self.hidepid}",
                        lambda: runner.run(["mount", "-o", old, "/proc"], timeout=60))


def component() -> Component:
    profile = load_profile("base")["proc"]
    hidepid, group = str(profile["hidepid"]), str(profile["group"])
    proc_group = Group(group)
    return Component("processes", [
        proc_group,
        ProcLine(hidepid, group),
        ProcMounted(hidepid, group, requires=(proc_group.id,)),
    ])
