"""The resources a clone and a migrate share: a site's directory copied to its new place,
its database copied, Drupal's maintenance mode, and the database work of the new code
(paths rewritten, updates run, caches cleared) with the database put back as it was when
anything fails. Each registers its undo in the run's journal."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from installer.database import sql
from installer.database.dump import copy_database, dump_database, restore_database, verify_dump
from installer.drupal.detect import DRUPAL7, Platform
from installer.errors import ApplyError, BarracudaError
from installer.octopus.model import Instance, SiteRecord
from installer.octopus.sites.drupal import run_as, site_uri, status, tool
from installer.octopus.sites.rewrite import Rename, profile_statements, rewrite_paths
from installer.resources.base import Change, Context, Resource

KEPT_OUT = ("settings.php",)  # rendered again at the new place, never copied


@dataclass
class SiteCopy(Resource):
    """The site directory `source` copied to `dest` (owners, modes and times kept; its
    settings.php left out: the run renders the new one). Copied into a root-only
    directory, renamed into place (never over anything but an empty directory); a failed
    run removes it."""

    changes_environment = True

    source: str
    dest: str
    stage_in: str  # a root-only directory on the same filesystem (the instance's backups/)

    @property
    def id(self) -> str:
        return f"site-copy:{self.dest}"

    @property
    def ok_reason(self) -> str:
        return "in place"

    def check(self, ctx: Context) -> list[Change]:
        if ctx.facts.file(self.dest).exists:
            return []
        return [self.change("copy", f"from {self.source} (files, private files, its own "
                                    "modules and themes; not settings.php)")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        # Staged where the tenant cannot reach (the platform's sites/ is theirs: a name
        # there could be a link by the time root copies into it), then renamed into place.
        real = ctx.target.path(self.dest)
        where = ctx.target.path(self.stage_in)
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        top = Path(tempfile.mkdtemp(prefix=".copy-", dir=where))
        stage = top / real.name
        try:
            ctx.runner.run(["cp", "-a", "--reflink=auto", "--", str(ctx.target.path(
                self.source)), str(stage)], timeout=6 * 3600)
            for name in KEPT_OUT:
                (stage / name).unlink(missing_ok=True)
            try:
                os.rename(stage, real)
            except OSError as exc:
                raise ApplyError(f"cannot place {self.dest}: {exc.strerror}") from None
        finally:
            shutil.rmtree(top, ignore_errors=True)
        ctx.journal.did(f"copied {self.source} to {self.dest}",
                        lambda: shutil.rmtree(real, ignore_errors=True))


@dataclass
class DatabaseCopy(Resource):
    """Every table of `source` copied into the new, empty database `dest` (which the run
    created: dropping it is the undo)."""

    source: str
    dest: str

    @property
    def id(self) -> str:
        return f"database-copy:{self.dest}"

    @property
    def ok_reason(self) -> str:
        return "holds its tables"

    def check(self, ctx: Context) -> list[Change]:
        if ctx.target.live and sql.database_exists(ctx.runner, self.dest) and sql.scalar(
                ctx.runner, "SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                            f"TABLE_SCHEMA = {sql.quote_text(self.dest)}") != "0":
            return []
        return [self.live_change(ctx, "copy", f"every table of {self.source}")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if ctx.target.live:
            copy_database(ctx.runner, self.source, self.dest)


@dataclass
class Maintenance(Resource):
    """Drupal's maintenance mode of `site` (on the platform `platform`) switched `on` or
    off. Switching it on registers switching it off again as its undo."""

    instance: Instance
    site: SiteRecord
    platform: Platform
    php: str
    on: bool

    @property
    def id(self) -> str:
        return f"maintenance:{self.site.domain}:{'on' if self.on else 'off'}"

    def check(self, ctx: Context) -> list[Change]:
        why = ("visitors get Drupal's 503 page while the site moves" if self.on
               else "the site is back online")
        return [self.live_change(ctx, "on" if self.on else "off", why)]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        switch(ctx, self.instance, self.site, self.platform, self.php, self.on)
        if self.on:
            ctx.journal.did(f"put {self.site.domain} in maintenance", lambda: switch(
                ctx, self.instance, self.site, self.platform, self.php, False))


def switch(ctx: Context, instance: Instance, site: SiteRecord, platform: Platform, php: str,
           on: bool) -> None:
    drupal = tool(instance, platform, php)
    drupal.parse_maintenance(run_as(ctx.runner, instance, drupal.maintenance(
        uri=site_uri(site), on=on)))


@dataclass
class SiteDatabase(Resource):
    """The database work of a site at its new place, as the instance's user: the paths of
    its old directory rewritten (`rename`), the new code's database updates run (`update`),
    the caches cleared. With `safety`, the database is dumped (and the dump verified)
    first, and a failure loads it back: the site's data is as it was."""

    instance: Instance
    site: SiteRecord  # at its new place
    platform: Platform  # the new place's
    php: str
    rename: Rename | None = None
    update: bool = False
    safety: bool = False
    profile: tuple[str, str] = ("", "")  # Drupal 7: the install profile renamed, old -> new

    @property
    def id(self) -> str:
        return f"site-database:{self.site.domain}"

    def check(self, ctx: Context) -> list[Change]:
        work = []
        old, new = self.profile
        if old != new:
            work.append(f"install profile {old} renamed {new}")
        if self.rename:
            work.append(f"sites/{self.rename.old}/ rewritten to sites/{self.rename.new}/")
        if self.update:
            work.append(f"the database updates of Drupal {self.platform.version} run")
        work.append("caches cleared")
        if self.safety:
            work.insert(0, f"{self.site.db_name} dumped first (put back on failure)")
        return [self.live_change(ctx, "run", ", ".join(work))]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        if self.safety:
            self._keep(ctx)
        domain = self.site.domain
        old, new = self.profile
        if old != new and self.platform.core == DRUPAL7:
            sql.execute(ctx.runner, profile_statements(self.site.db_name, old, new))
        if self.rename:
            done = rewrite_paths(ctx.runner, self.site.db_name, self.platform.core, self.rename)
            ctx.note(f"{domain}: sites/{self.rename.old}/ rewritten to sites/"
                     f"{self.rename.new}/ in " + (", ".join(done) or "no row (none held it)"))
        drupal = tool(self.instance, self.platform, self.php)
        uri = site_uri(self.site)
        try:
            if self.update:
                ran = drupal.parse_updatedb(run_as(ctx.runner, self.instance,
                                                   drupal.updatedb(uri=uri)))
                ctx.note(f"{domain}: " + (f"database updates run: {', '.join(ran)}" if ran
                                          else "no database update was pending"))
            drupal.parse_cache_rebuild(run_as(ctx.runner, self.instance,
                                              drupal.cache_rebuild(uri=uri)))
            if self.update and self.platform.core == DRUPAL7:
                found = status(ctx.runner, self.instance, self.platform, self.php, self.site)
                if found.pending_updates:
                    raise ApplyError(f"{found.pending_updates} database updates still "
                                     "pending after updatedb")
        except BarracudaError as exc:
            raise ApplyError(f"{domain}: {exc}") from exc

    def _keep(self, ctx: Context) -> None:
        """Dump the database, verified, and register loading it back as the undo."""
        runner, db = ctx.runner, self.site.db_name
        where = ctx.target.path(f"{self.instance.root}/backups")
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        keep = Path(tempfile.mkdtemp(prefix=f".{db}-before-", dir=where))
        dump = keep / f"{db}.sql.zst"
        try:
            problem = verify_dump(runner, dump, dump_database(runner, db, dump))
            if problem:
                raise ApplyError(f"the dump of {db} does not verify: {problem}")
        except BaseException:
            shutil.rmtree(keep, ignore_errors=True)
            raise

        def put_back() -> None:
            sql.execute(runner, [sql.drop_database(db)])
            restore_database(runner, dump, db)
            shutil.rmtree(keep, ignore_errors=True)

        ctx.journal.did(f"changed database {db} (loaded back from its dump)", put_back)
        ctx.journal.at_commit(f"delete {keep}", lambda: shutil.rmtree(keep))
