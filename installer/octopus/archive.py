"""One archive for a site or a whole instance, made before anything of it is removed and by
`octopus backup`. An archive is a .tar.zst holding:

    manifest.json        kind (site|instance), instance, created, the site records, and one
                         dump record per database (size, sha256, row counts)
    db/<name>.sql.zst    one verified dump per database (installer/database/dump.py)
    records/             the platform and site records, and the instance's .octopus.cnf
    tree/                a site: its sites/DOMAIN directory; an instance: /data/disk/oN

It is written as a hidden .partial file, checked (every dump verified before packing, the
finished archive listed back through zstd), then renamed into place, mode 0600 root."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from installer.database.dump import dump_database, verify_dump
from installer.errors import ApplyError
from installer.octopus.model import Instance, PlatformRecord, SiteRecord
from installer.resources.base import Change, Context, Resource
from installer.runner import Runner
from installer.target import Target

SUFFIX = ".tar.zst"


def archive_name(label: str) -> str:
    return f"{label}-{time.strftime('%Y%m%d-%H%M%S')}{SUFFIX}"


def make_archive(runner: Runner, target: Target, dest: Path, *, kind: str,
                 instance: Instance, sites: list[SiteRecord], platforms: list[PlatformRecord],
                 tree: str, extra_files: Sequence[str] = ()) -> Path:
    """Write the archive `dest` (see the module's docstring) and return it."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = dest.with_name(f".{dest.name}.partial")
    stage = Path(tempfile.mkdtemp(prefix=".archive-", dir=dest.parent))
    try:
        os.chmod(stage, 0o700)
        dumps: dict[str, Any] = {}
        for site in sites:
            out = stage / "db" / f"{site.db_name}.sql.zst"
            record = dump_database(runner, site.db_name, out)
            problem = verify_dump(runner, out, record)
            if problem:
                raise ApplyError(f"the dump of {site.db_name} does not verify: {problem}")
            dumps[site.db_name] = record.as_dict()
        records = stage / "records"
        records.mkdir()
        for path in [*(instance.platform_record(p.name) for p in platforms),
                     *(instance.site_record(s.domain) for s in sites), *extra_files]:
            real = target.path(path)
            if real.is_file():
                shutil.copy2(real, records / real.name)
        manifest = {
            "kind": kind, "instance": instance.name, "tree": tree,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "sites": [_site(s) for s in sites], "platforms": [asdict(p) for p in platforms],
            "databases": dumps,
        }
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        real_tree = target.path(tree)
        argv = ["tar", "--zstd", "-cf", str(partial), "-C", str(stage), "manifest.json",
                "records"]
        if dumps:
            argv.append("db")
        if real_tree.is_dir():
            argv += ["-C", str(real_tree.parent), f"--transform=s,^{real_tree.name},tree,",
                     real_tree.name]
        runner.run(argv, timeout=6 * 3600)
        runner.run(["tar", "--zstd", "-tf", str(partial)], timeout=6 * 3600)
        os.chmod(partial, 0o600)
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return dest


def _site(site: SiteRecord) -> dict[str, Any]:
    data = asdict(site)
    data.pop("db_password")  # the password is in the record file under records/
    data["aliases"] = list(site.aliases)
    return data


def read_manifest(runner: Runner, archive: Path) -> dict[str, Any]:
    """The manifest of an archive made by make_archive."""
    result = runner.run(["tar", "--zstd", "-xOf", str(archive), "manifest.json"], timeout=600)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@dataclass
class Archive(Resource):
    """A backup that a removal makes first: written once per run, kept afterwards."""

    dest: str
    make: Callable[[Context, Path], Path]
    what: str

    @property
    def id(self) -> str:
        return f"archive:{self.dest}"

    @property
    def ok_reason(self) -> str:
        return "written"

    def check(self, ctx: Context) -> list[Change]:
        if ctx.target.path(self.dest).exists():
            return []
        return [self.live_change(ctx, "create", f"{self.what} is backed up first")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if ctx.target.live:
            self.make(ctx, ctx.target.path(self.dest))
            ctx.note(f"{self.what} was backed up to {self.dest}")
