"""`octopus site add --install`: Drupal's own installer, run as a resource in a late phase
(Phase.INSTALL) of the same converge that makes the site's database, account, directories,
credentials and settings.php. When the installer fails, the run's journal undoes all of them
(and the record and vhost are never written), so nothing is left behind; the one-line error
carries the installer's own last message."""

from __future__ import annotations

from dataclasses import dataclass, field

from installer.database import sql
from installer.drupal.detect import Platform
from installer.drupal.drush import DrupalTool
from installer.drupal.settings import DatabaseCredentials
from installer.octopus.components import DB_HOST, DB_PORT
from installer.octopus.model import Instance, SiteRecord
from installer.octopus.sites.drupal import run_as, site_uri, tool
from installer.resources.base import Change, Context, Resource


@dataclass(frozen=True)
class InstallOptions:
    """`--install` and what goes with it."""

    profile: str = "standard"
    site_name: str = ""
    admin_email: str = ""
    locale: str = "en"


@dataclass
class SiteInstall(Resource):
    """Drupal installed into the site's (empty) database. A database that already holds
    tables is an installed site: nothing to do."""

    instance: Instance
    site: SiteRecord
    platform: Platform
    php: str  # the PHP version the site runs on
    options: InstallOptions
    admin_password: str = field(repr=False)

    @property
    def id(self) -> str:
        return f"drupal-install:{self.site.domain}"

    @property
    def ok_reason(self) -> str:
        return "installed"

    def tool(self) -> DrupalTool:
        return tool(self.instance, self.platform, self.php)

    def check(self, ctx: Context) -> list[Change]:
        what = (f"Drupal {self.platform.version} with profile {self.options.profile}, as "
                f"{self.instance.name}")
        if not ctx.target.live:
            return [self.live_change(ctx, "install", what)]
        if sql.database_exists(ctx.runner, self.site.db_name) and sql.scalar(
                ctx.runner, "SELECT COUNT(*) FROM information_schema.tables WHERE "
                f"table_schema = {sql.quote_text(self.site.db_name)}") not in ("", "0"):
            return []
        return [self.change("install", what)]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        drupal = self.tool()
        options = self.options
        invocation = drupal.install(
            uri=site_uri(self.site), admin_password=self.admin_password,
            profile=options.profile, site_name=options.site_name,
            admin_mail=options.admin_email, site_mail=options.admin_email,
            locale=options.locale,
            # Drush's own check reads the database from the site it bootstraps first, which
            # may be another directory than the site's: it is told where the database is.
            db=DatabaseCredentials(self.site.db_name, self.site.db_user,
                                   self.site.db_password, host=DB_HOST, port=int(DB_PORT)))
        # Tables the installer made go with the database the run created (its undo).
        drupal.parse_install(run_as(ctx.runner, self.instance, invocation))
