"""An instance's components, built from its config and records (pure: facts in, desired
resources out). Order matters for a PHP version change: the new pool starts before Nginx
points at it, and the old pool goes only after Nginx stopped using it, so no request meets
a missing socket."""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from installer.config import Config
from installer.data import load_profile, templates_dir
from installer.drupal import settings as drupal_settings
from installer.drupal.detect import DRUPAL7, Platform
from installer.errors import ConfigError
from installer.octopus import access as tenant_access
from installer.octopus import certificate
from installer.octopus.codebase import kind_of
from installer.octopus.model import Instance, PlatformRecord, SiteRecord
from installer.octopus.sizing import pool_size
from installer.plan import Component, Validator
from installer.resources.accounts import Group, GroupMember, User
from installer.resources.base import Context, Resource, reload
from installer.resources.cron import CRON_DIR, CronJob, cron_file
from installer.resources.database import Database, DatabaseAccount
from installer.resources.files import Absent, Directory, File
from installer.resources.trees import CodeTree
from installer.stack import firewall, redis
from installer.stack.base import ConfigFile
from installer.stack.context import StackContext
from installer.stack.nginx import live_tree_valid, site_includes
from installer.stack.secrets import SECRETS_DIR


class Phase(IntEnum):
    """The order in which an instance's components run. A workflow adds its own component
    to the phase it belongs to (a restore places its data in DATA: after the databases and
    the platforms, before the site directories and the vhost)."""

    SECRETS = 10
    ACCOUNTS = 20
    TREES = 30
    BACKUP = 35  # an archive made before anything is taken away
    DATABASES = 40
    CODE = 45  # code placed from an archive, before the platforms are converged
    PLATFORMS = 50
    DATA = 60  # restored files and databases
    SITES = 70
    INSTALL = 75  # Drupal's installer: after the database, directories and settings.php,
    #               before any vhost serves the site (no visitor meets install.php)
    POOLS = 80
    CERTIFICATES = 85  # issued before the vhosts name them
    NGINX = 90
    CLEANUP = 100  # old pools, removed sites and platforms, after Nginx moved on
    VERIFY = 110  # checks that the sites bootstrap and answer, after everything else


WEB_SERVER_USER = "www-data"
DB_HOST = "localhost"
DB_PORT = "3306"
LOGIN_SHELL = "/bin/bash"
DEFAULT_SERVER_HEADER = "X-Barracuda-Server"  # set by templates/nginx/master_vhost.conf.j2


@dataclass(frozen=True)
class InstanceState:
    """Everything an instance is built from."""

    instance: Instance
    config: Config  # its /root/.oN.octopus.cnf, validated
    platforms: list[PlatformRecord]
    sites: list[SiteRecord]
    instances: int  # how many instances the machine has (with this one)
    db_password: str  # the instance account's
    initial: dict[str, str] = field(default_factory=dict)  # values for a new config file
    detected: dict[str, str] = field(default_factory=dict)  # kind of each `auto` platform
    # What each platform's tree is (installer.drupal.detect), at its path in the instance;
    # absent for a tree not placed yet.
    codebases: dict[str, Platform] = field(default_factory=dict)
    redis: drupal_settings.RedisCredentials | None = None  # the instance's Redis ACL user
    https: certificate.HttpsDefaults = field(default_factory=certificate.HttpsDefaults)
    # Its FTP user's and clients' keys and grants (installer/octopus/access.py).
    access: tenant_access.AccessState = field(default_factory=tenant_access.AccessState)

    def site_kind(self, site: SiteRecord) -> str:
        """The site's vhost type: its own choice, else its platform's (detected from the
        tree for a cloned platform; drupal until the tree is there)."""
        if site.kind:
            return site.kind
        kind = next((p.kind for p in self.platforms if p.name == site.platform), "auto")
        if kind == "auto" and site.platform in self.codebases:
            return kind_of(self.codebases[site.platform])
        return self.detected.get(site.platform, "drupal") if kind == "auto" else kind

    def codebase(self, site: SiteRecord) -> Platform | None:
        """The site's platform, when it is Drupal and its tree is known."""
        platform = self.codebases.get(site.platform)
        return platform if platform is not None and platform.is_drupal else None

    def managed_settings(self, site: SiteRecord) -> bool:
        """settings.php and the credentials file are ours: a Drupal site with a kept salt."""
        return bool(site.hash_salt) and self.codebase(site) is not None

    @property
    def php(self) -> str:
        return str(self.config["_PHP_FPM_VERSION"])

    def site_php(self, site: SiteRecord) -> str:
        return site.php or self.php

    @property
    def php_versions(self) -> list[str]:
        """Every PHP version a pool of this instance runs on, the instance's first."""
        return list(dict.fromkeys([self.php, *(self.site_php(s) for s in self.sites)]))


def resolve_php(config: Config, key: str, version: str, stack: StackContext) -> str:
    """AUTO -> the machine's FPM version; any other version must be installed."""
    if version in ("", "AUTO"):
        return stack.php_default
    if version not in stack.php_versions:
        raise config.error(key, f"PHP {version} is not installed on this machine (installed: "
                                f"{' '.join(stack.php_versions)}); add it to _PHP_MULTI_INSTALL "
                                "in /root/.barracuda.cnf first")
    return version


def _owner(token: str, instance: Instance) -> str:
    return {"root": "root", "user": instance.name, "web": instance.web_user,
            "group": instance.group, "secrets": instance.secrets_group}[token]


def accounts(state: InstanceState, stack: StackContext) -> Component:
    i = state.instance
    group, secrets = Group(i.group), Group(i.secrets_group)
    access = Group(tenant_access.access_group())
    users = [User(i.name, home=i.root, primary=i.group, login_shell=LOGIN_SHELL,
                  requires=(group.id,)),
             # A tenant's way in: SSH keys only, the limited shell (installer/stack/ssh.py).
             User(i.ftp_user, home=i.ftp_home, primary=i.group,
                  groups=(tenant_access.access_group(),),
                  login_shell=tenant_access.shell_path(), requires=(group.id, access.id)),
             User(i.web_user, home=i.web_home, primary=i.group, requires=(group.id,))]
    shell, _, web = users
    clients, _ = tenant_access.components(i, state.sites, state.access)
    return Component(f"{i.name}-accounts", [
        group, access, *users, *clients,
        # The web server reads the instance's static files through the instance group.
        GroupMember(WEB_SERVER_USER, i.group, requires=(group.id,),
                    notify=(reload(stack.release.service("nginx")),)),
        # The credentials files: the shell user (Drush, cron) and the web user (PHP-FPM
        # initialises the supplementary groups of its pool's user) only.
        secrets,
        *(GroupMember(user.name, secrets.name, requires=(secrets.id, user.id))
          for user in (shell, web)),
    ], phase=Phase.ACCOUNTS)


def redis_user(state: InstanceState, stack: StackContext) -> list[Component]:
    """The instance's own Redis user (its password kept like the database one), limited to
    the keys `oN:*`; the sites' credentials files hand it to settings.php."""
    i, creds = state.instance, state.redis
    if creds is None:
        return []
    return [Component(f"{i.name}-redis", [
        File(f"{SECRETS_DIR}/octopus-{i.name}-redis", content=creds.password + "\n",
             mode=0o600, comment="", secret=True),
        redis.acl_file(creds.user, creds.password),
        redis.RedisUser(user=creds.user, password=creds.password,
                        socket=stack.paths["redis_socket"],
                        admin_password=stack.redis_password),
    ], phase=Phase.SECRETS)]


def tree(state: InstanceState) -> Component:
    i = state.instance
    profile = load_profile("octopus")
    resources: list[Resource] = [
        ConfigFile(Path(state.config.path), profile="octopus",
                   initial=state.initial),
    ]
    for spec in profile["directories"]:
        path = f"{i.root}/{spec['path']}".rstrip("/")
        resources.append(Directory(path, mode=int(spec["mode"], 8),
                                   owner=_owner(spec["owner"], i),
                                   fgroup=_owner(spec["group"], i)))
    resources += [
        Directory(i.web_home, mode=0o750, owner=i.web_user, fgroup=i.group),
        Directory(i.ftp_home, mode=0o750, owner=i.ftp_user, fgroup=i.group),
    ]
    if any(p.core == DRUPAL7 for p in state.codebases.values()):
        # Drupal 7's install, cron and login run through the tool's own helper, as the
        # instance's user, who cannot read the tool's install directory.
        resources.append(File(i.d7tool, content=(templates_dir() / "drupal" / "d7tool.php")
                              .read_text(encoding="utf-8"), mode=0o640, owner="root",
                              fgroup=i.group, comment=""))
    return Component(f"{i.name}-tree", resources, phase=Phase.TREES)


def databases(state: InstanceState, stack: StackContext) -> Component:
    """One database and account per site (ALL on that database only), and the instance's
    own account, which may use exactly its sites' databases: never a name pattern, which
    would also cover another instance whose name starts with this one's."""
    i = state.instance
    socket = stack.paths["mysqld_socket"]
    site_dbs = tuple(site.db_name for site in state.sites)
    made = {name: Database(name) for name in site_dbs}
    resources: list[Resource] = list(made.values())
    resources += [
        DatabaseAccount(site.db_user, site.db_password, (site.db_name,), socket=socket,
                        requires=(made[site.db_name].id,))
        for site in state.sites]
    own = DatabaseAccount(i.name, state.db_password, site_dbs, socket=socket,
                          requires=tuple(database.id for database in made.values()))
    resources += [
        own,
        File(f"{i.root}/.my.cnf", content=(
            f"[client]\nuser={i.name}\npassword={state.db_password}\nsocket={socket}\n"),
            mode=0o600, owner=i.name, fgroup=i.group, secret=True, requires=(own.id,)),
    ]
    return Component(f"{i.name}-databases", resources, phase=Phase.DATABASES)


def platforms(state: InstanceState) -> Component:
    i = state.instance
    resources: list[Resource] = []
    for platform in state.platforms:
        front = f"{platform.docroot}/index.php" if platform.docroot else "index.php"
        resources += [
            File(i.platform_record(platform.name), content=platform.dump(), mode=0o600),
            CodeTree(i.platform_dir(platform.name), owner=i.name, fgroup=i.group,
                     source=platform.source if platform.via == "copy" else "",
                     git=platform.source if platform.via == "git" else "", ref=platform.ref,
                     require=front),
        ]
    return Component(f"{i.name}-platforms", resources, phase=Phase.PLATFORMS)


def pools(state: InstanceState, stack: StackContext) -> list[Component]:
    i = state.instance
    octopus = load_profile("octopus")["php"]
    size = pool_size(stack.tuning, state.instances, state.config["_PHP_FPM_WORKERS"])
    timeout = state.config["_PHP_FPM_TIMEOUT"] or int(octopus["default_timeout_s"])
    deny = [f for f in str(state.config["_PHP_FPM_DENY"]).split(",") if f]
    tmp = f"{i.root}/tmp"
    basedir = [f"{i.root}/{d}/" for d in octopus["open_basedir"]]
    basedir += [f"{d}/" for d in octopus["shared_open_basedir"]]
    components = []
    for version in state.php_versions:
        service = stack.release.service("php", version)
        context = {
            "instance": i.name, "version": version, "user": i.web_user, "group": i.group,
            "socket": i.socket(version), "children": size.children, "timeout_s": timeout,
            "open_basedir": basedir,
            "disable_functions": list(dict.fromkeys([*deny, *octopus["disable_functions"]])),
            "tmp_dir": tmp, "tuning": stack.tuning, "paths": stack.paths,
            "mail_extra_parameters": octopus["mail_extra_parameters"],
        }
        components.append(Component(
            f"{i.name}-php{version}",
            [File(i.pool_file(version), template="php/pool-instance.conf.j2", context=context,
                  comment=";", notify=(reload(service),))],
            validators=[Validator([stack.release.fpm_binary(version), "-t"],
                                  f"php-fpm{version} -t")],
            health=[socket_appears(i.socket(version))],
            notes=[f"{i.name} pool: pm.max_children {size.children} = {size.rule}"],
            phase=Phase.POOLS,
        ))
    return components


def socket_appears(path: str, attempts: int = 40) -> Callable[[Context], str | None]:
    """A reloaded FPM master opens a new pool's socket asynchronously: wait for it."""

    def probe(ctx: Context) -> str | None:
        for _ in range(attempts):
            if ctx.target.path(path).exists():
                return None
            time.sleep(0.25)
        return f"{path} did not appear"

    return probe


def site_directories(core: str) -> list[dict[str, str]]:
    """The writable directories of a site on a codebase of `core` (profiles/octopus.yml)."""
    return [d for d in load_profile("octopus")["site_directories"]
            if d.get("only") in (None, core)]


def settings_of(state: InstanceState, site: SiteRecord,
                platform: Platform) -> drupal_settings.SiteSettings:
    """What the site's settings.php is rendered from."""
    i = state.instance
    dev = re.compile(load_profile("nginx")["dev_alias_regex"])
    return drupal_settings.SiteSettings(
        platform=platform, domain=site.domain, credentials_file=Path(i.credentials_file(
            site.domain)), hash_salt=site.hash_salt, names=site.aliases,
        dev_names=tuple(n for n in site.aliases if dev.search(n)),
        redis_prefix=f"{i.name}:{site.domain}:", redis=state.redis is not None)


def site_files(state: InstanceState, site: SiteRecord, stack: StackContext) -> list[Resource]:
    """A Drupal site's credentials file (outside the platform) and settings.php (read-only
    for the web user; an operator's own settings go in local.settings.php beside it). A
    change reloads the site's pool, so OPcache serves the new settings at once."""
    platform = state.codebase(site)
    if platform is None or not site.hash_salt:
        return []
    i = state.instance
    reloaded = (reload(stack.release.service("php", state.site_php(site))),)
    db = drupal_settings.DatabaseCredentials(site.db_name, site.db_user, site.db_password,
                                             host=DB_HOST, port=int(DB_PORT))
    return [
        File(i.credentials_file(site.domain), mode=0o440, owner="root", fgroup=i.secrets_group,
             comment="", secret=True,
             content=drupal_settings.credentials_php(db, state.redis, domain=site.domain),
             notify=reloaded),
        File(f"{i.site_dir(site)}/settings.php", mode=0o440, owner="root", fgroup=i.group,
             comment="", secret=True,
             content=drupal_settings.settings_php(settings_of(state, site, platform)),
             requires=(f"dir:{i.site_dir(site)}",), notify=reloaded),
    ]


def sites(state: InstanceState, stack: StackContext) -> Component:
    i = state.instance
    # Each platform's sites/ directory once, however many sites it carries.
    resources: list[Resource] = [
        Directory(f"{i.docroot(name, rel)}/sites", mode=0o750, owner=i.name, fgroup=i.group)
        for name, rel in dict.fromkeys((site.platform, site.docroot) for site in state.sites)]
    for site in state.sites:
        site_dir = i.site_dir(site)
        platform = state.codebases.get(site.platform)
        core = platform.core if platform else ""
        resources += [
            File(i.site_record(site.domain), content=site.dump(), mode=0o600, secret=True),
            # root's: neither the web user nor Drupal's installer (which would chmod a
            # directory it owns) changes what is in it but the writable directories below.
            Directory(site_dir, mode=0o750, owner="root", fgroup=i.group),
            *(Directory(f"{site_dir}/{d['path']}", mode=int(d["mode"], 8), owner=i.web_user,
                        fgroup=i.group) for d in site_directories(core)),
            *site_files(state, site, stack),
        ]
    return Component(f"{i.name}-sites", resources, phase=Phase.SITES)


def site_open_basedir(state: InstanceState, site: SiteRecord) -> list[str]:
    """What the site's PHP may open, sent by its vhost with every request (the pool is the
    instance's, shared by its sites): its platform, its own credentials file, the instance's
    tmp and the machine's shared PHP directories. The whole platform, on every core: Drupal
    8 and later scan the docroot for extensions, and Drupal 7 makes a directory of its files
    (image styles, aggregated CSS) by testing each parent from `sites` down, which a
    boundary without `sites` itself refuses (and `sites` as a prefix would admit every
    site's directory anyway)."""
    i = state.instance
    octopus = load_profile("octopus")["php"]
    code = [f"{i.platform_dir(site.platform)}/"]
    own = [i.credentials_file(site.domain)] if state.managed_settings(site) else []
    return [*code, *own, f"{i.root}/tmp/", *(f"{d}/" for d in octopus["shared_open_basedir"])]


def nginx(state: InstanceState, stack: StackContext, known_vhosts: list[str]) -> Component:
    """The instance include (its upstreams and vhost.d) and one vhost per site; vhosts of
    sites no longer recorded are moved aside."""
    i = state.instance
    reloaded = (reload(stack.release.service("nginx")),)
    upstreams = [{"name": i.upstream(v), "socket": i.socket(v)} for v in state.php_versions]
    resources: list[Resource] = [
        File(i.nginx_include, template="nginx/instance.conf.j2", notify=reloaded,
             context={"instance": i.name, "upstreams": upstreams, "vhost_dir": i.vhost_dir}),
    ]
    profile = load_profile("nginx")
    dev = re.compile(profile["dev_alias_regex"])
    for site in state.sites:
        files = f"{i.site_dir(site)}/files"
        cert, key = certificate.served(site, state.https, stack.paths)
        resources.append(File(
            i.vhost(site.domain), template="nginx/site_vhost.conf.j2", mode=0o600, secret=True,
            notify=reloaded, context={
                "site": site, "kind": state.site_kind(site), "instance": i.name,
                "root": i.docroot(site.platform, site.docroot),
                # Drupal's web installer is never served: a site not installed yet would
                # belong to whoever reached install.php first. `site add --install` installs
                # from the command line; the template keeps the switch for a future opt-in.
                "installed": True,
                "upstream": i.upstream(state.site_php(site)), "ipv6": stack.ipv6,
                "http2": stack.release.nginx_http2,
                "cert": cert, "key": key,
                "stapling": bool(site.certificate) and bool(profile["tls"]["stapling"]),
                "hsts": site.hsts,
                "cache_ttl": site.cache_ttl or int(profile["speed_booster"]["ttl_s"]),
                "dev_names": [n for n in site.aliases if dev.search(n)],
                "db_host": DB_HOST, "db_port": DB_PORT, "files_dir": files,
                "private_dir": f"{i.site_dir(site)}/private", "paths": stack.paths,
                "includes": site_includes(stack.paths), "nginx": profile,
                "open_basedir": site_open_basedir(state, site),
            }))
    wanted = {i.vhost(s.domain) for s in state.sites}
    resources += [Absent(path, why="no site of this name is recorded", notify=reloaded)
                  for path in known_vhosts if path not in wanted]
    return Component(
        f"{i.name}-nginx", resources,
        validators=[Validator(["nginx", "-t"], "nginx -t")],
        health=[sites_answer(state)],
        preflight=[live_tree_valid],
        phase=Phase.NGINX,
    )


def sites_answer(state: InstanceState, attempts: int = 30) -> Callable[[Context], str | None]:
    """After a reload, every site is served by its own vhost (not yet by the default
    server, which marks its answers) and reaches its PHP pool (no 502 or 504), asked past
    the Speed Booster."""

    def probe(ctx: Context) -> str | None:
        import requests  # deferred: only a reload probes (see installer/stack/nginx.py)

        problem = None
        for site in state.sites:
            problem = "no answer"
            for _ in range(attempts):
                try:
                    response = requests.get("http://127.0.0.1/?nocache=1", timeout=5,
                                            headers={"Host": site.domain},
                                            allow_redirects=False)
                    default = response.headers.get(DEFAULT_SERVER_HEADER) == "default"
                    if response.status_code not in (502, 504) and not default:
                        problem = None
                        break
                    problem = ("answered by the default server" if default
                               else f"HTTP {response.status_code}")
                except requests.RequestException as exc:
                    problem = str(exc)
                time.sleep(0.5)
            if problem:
                return f"{site.domain}: {problem}"
        return None

    return probe


def site_cron(state: InstanceState) -> Component:
    """Drupal's cron of every installed site, hourly, each site at its own minute (from its
    name, so the sites of a machine do not all start at once). The job starts as root only
    to log a failure as an incident; Drupal's cron itself runs as the instance's user. A
    disabled site has no job."""
    i = state.instance
    jobs = [CronJob(f"{i.name} {site.domain} drupal cron",
                    f"{zlib.crc32(site.domain.encode()) % 60} * * * *",
                    f"octopus site cron {i.name} {site.domain}")
            for site in state.sites if site.installed and not site.disabled
            and state.codebase(site) is not None]
    if not jobs:
        return Component(f"{i.name}-cron", [Absent(f"{CRON_DIR}/{i.cron_file}",
                                                   why="no installed site enabled")],
                         phase=Phase.CLEANUP)
    return Component(f"{i.name}-cron", [cron_file(i.cron_file, jobs)], phase=Phase.CLEANUP)


def stale_pools(state: InstanceState, stack: StackContext) -> Component:
    """Pools of PHP versions the instance no longer uses, removed after Nginx moved on."""
    i = state.instance
    resources: list[Resource] = []
    for version in stack.release.php_versions:
        if version not in state.php_versions:
            service = stack.release.service("php", version)
            resources.append(Absent(i.pool_file(version), why="this PHP version is unused now",
                                    notify=(reload(service),)))
    return Component(f"{i.name}-old-pools", resources, phase=Phase.CLEANUP)


def build_instance(state: InstanceState, stack: StackContext,
                   known_vhosts: list[str]) -> list[Component]:
    for site in state.sites:
        if site.php:
            resolve_php(state.config, "_PHP_FPM_VERSION", site.php, stack)
    missing = {s.platform for s in state.sites} - {p.name for p in state.platforms}
    if missing:
        raise ConfigError(f"sites of {state.instance.name} use unknown platforms: "
                          f"{' '.join(sorted(missing))}")
    return [
        *redis_user(state, stack),
        accounts(state, stack),
        tree(state),
        databases(state, stack),
        platforms(state),
        sites(state, stack),
        *pools(state, stack),
        Component(f"{state.instance.name}-certificates", certificate.resources(
            state.sites, state.https, stack.paths), phase=Phase.CERTIFICATES),
        nginx(state, stack, known_vhosts),
        stale_pools(state, stack),
        site_cron(state),
        access_files(state),
        # After Nginx opened a new site's log: the abuse guard reads it too.
        Component(f"{state.instance.name}-guard", [firewall.guard_every_log()],
                  phase=Phase.CLEANUP),
    ]


def access_files(state: InstanceState) -> Component:
    """The accounts' keys, maps, Drush aliases and grants, once the sites' directories are
    there (installer/octopus/access.py)."""
    _, files = tenant_access.components(state.instance, state.sites, state.access)
    return Component(f"{state.instance.name}-access", files, phase=Phase.SITES + 1)
