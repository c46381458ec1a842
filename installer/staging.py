"""Validate a run's files before any of them reaches the live tree.

Before a live run changes anything, every file it would write (and every path it would
remove) is staged in an overlay: in a private mount namespace (`unshare --mount`), each
top directory the run touches (/etc/nginx, /var/aegir, /data/disk, ...) gets an overlayfs
whose lower layer is the live directory and whose upper layer holds the staged files. The
components' validators (nginx -t, php-fpm -t, ...) run there and see exactly the tree the
run would leave, while the live tree and the running services see nothing. A failure stops
the run before its first change (no database is created for a site whose vhost would not
load, no broken file ever sits in the live tree).

The namespace dies with the validator, so nothing is left mounted. Where overlays cannot be
mounted (no CAP_SYS_ADMIN, no overlayfs), staging reports itself unavailable and the run
keeps its second line of defence: validation after writing, before any reload, with
rollback. So does a chroot (the sysv test box), where / is not a mount point and unshare
cannot make the namespace's propagation private: mounting without that could leak the
overlays into the parent namespace, so it is never tried.

Run as `python -m installer.staging SPEC -- ARGV...` inside the namespace: it mounts the
overlays listed in SPEC (JSON) and execs ARGV."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from installer.resources.base import Context, Resource
from installer.resources.files import Absent, File, Symlink
from installer.runner import Result

UNAVAILABLE = 97  # the exit code that means "could not stage", not "the validator failed"
READY = "staging: overlays mounted"  # printed just before the validator runs
STAGE_PARENT = "/run"


@dataclass(frozen=True)
class Staged:
    """A validator's result in the staged tree; None when staging is unavailable here."""

    result: Result | None


def top_of(path: str) -> str:
    """The directory an overlay covers for `path`: its first two components (/etc/nginx for
    /etc/nginx/conf.d/x.conf; /root for /root/.my.cnf)."""
    parts = path.strip("/").split("/")
    return "/" + "/".join(parts[: min(2, len(parts) - 1)]) if len(parts) > 1 else "/"


def pending_paths(ctx: Context, resources: Iterable[Resource]) -> list[Resource]:
    """The file-like resources that still have executed changes."""
    return [r for r in resources if isinstance(r, File | Absent | Symlink)
            and any(c.executed for c in r.check(ctx))]


def _path(resource: Resource) -> str:
    return str(getattr(resource, "path"))  # noqa: B009 - File, Absent and Symlink have one


def _stage_one(upper: Path, top: str, resource: Resource) -> None:
    dest = upper / Path(_path(resource)).relative_to(top)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(resource, File):
        dest.write_bytes(resource.wanted)
        os.chmod(dest, resource.mode)
    elif isinstance(resource, Symlink):
        os.symlink(resource.to, dest)
    else:  # Absent: an overlay whiteout hides the live file
        os.mknod(dest, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def stage(resources: list[Resource], target_root: Path) -> tuple[Path, dict[str, object]] | None:
    """Write the staged layers under a private directory; None when a top directory does not
    exist yet (a first install: there is nothing live to overlay)."""
    tops = sorted({top_of(_path(r)) for r in resources})
    if "/" in tops or any(not (target_root / t.lstrip("/")).is_dir() for t in tops):
        return None
    work = Path(tempfile.mkdtemp(prefix="barracuda-stage-", dir=STAGE_PARENT))
    os.chmod(work, 0o700)
    mounts = []
    for index, top in enumerate(tops):
        upper, scratch = work / f"{index}.upper", work / f"{index}.work"
        upper.mkdir()
        scratch.mkdir()
        mounts.append({"top": top, "upper": str(upper), "work": str(scratch)})
        for resource in resources:
            if top_of(_path(resource)) == top:
                _stage_one(upper, top, resource)
    return work, {"mounts": mounts}


def run_staged(ctx: Context, resources: list[Resource], argv: list[str],
               timeout: float = 120) -> Staged:
    """Run `argv` with `resources` staged over the live tree (see the module docstring)."""
    try:
        staged = stage(resources, ctx.target.root)
    except OSError as exc:  # e.g. no CAP_MKNOD for a whiteout
        ctx.log.info("staged validation unavailable here: %s", exc)
        return Staged(None)
    if staged is None:
        return Staged(None)
    work, spec = staged
    try:
        spec_file = work / "spec.json"
        spec_file.write_text(json.dumps(spec))
        result = ctx.runner.run(
            ["unshare", "--mount", "--propagation", "private", sys.executable, "-m",
             "installer.staging", str(spec_file), "--", *argv], check=False, timeout=timeout)
        if READY not in result.stderr:
            # unshare itself failed (in a chroot / is not a mount point, so its propagation
            # cannot be made private), or no overlay could be mounted.
            ctx.log.info("staged validation unavailable here: %s", result.output[-300:])
            return Staged(None)
        stderr = "".join(line for line in result.stderr.splitlines(keepends=True)
                         if line.strip() != READY)
        return Staged(replace(result, stderr=stderr))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(args: list[str]) -> int:
    """Inside the namespace: mount the overlays, then become the validator."""
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m installer.staging SPEC -- ARGV...", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text())
    for mount in spec["mounts"]:
        options = f"lowerdir={mount['top']},upperdir={mount['upper']},workdir={mount['work']}"
        done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options,
                               mount["top"]], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"staging: cannot overlay {mount['top']}: {done.stderr.strip()}",
                  file=sys.stderr)
            return UNAVAILABLE
    argv = args[2:]
    print(READY, file=sys.stderr, flush=True)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"staging: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return UNAVAILABLE
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
