"""What each octopus command converges: a builder per command, handed to the same
run_converge as `barracuda install`. Every check of the operator's input happens in the
builder, before the plan, so a bad argument changes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from installer.config import Config
from installer.config.schema import convert
from installer.data import load_profile
from installer.errors import ConfigError, UsageError
from installer.facts import Facts
from installer.octopus import model
from installer.octopus.archive import Archive, archive_name, make_archive
from installer.octopus.components import build_instance, resolve_php
from installer.octopus.model import Instance, PlatformRecord, SiteRecord, platform_kind
from installer.octopus.names import (
    check_domain,
    check_instance_name,
    check_platform_name,
    db_identifier,
)
from installer.octopus.state import Loaded, check_new_instance, load_instance, secret_name
from installer.plan import Component, Validator
from installer.resources.accounts import GroupAbsent, UserAbsent
from installer.resources.base import Context, Resource
from installer.resources.files import Absent
from installer.resources.system import Command
from installer.resources.trees import TreeAbsent
from installer.runlog import Redactor
from installer.stack.secrets import SECRETS_DIR, generate

Builder = Callable[[Config, Facts, Redactor], list[Component]]
DB_NAME_MAX = 64
DB_USER_MAX = 32


def _converge(loaded: Loaded) -> list[Component]:
    return build_instance(loaded.state, loaded.stack, loaded.known_vhosts)


def _secret_component(loaded: Loaded) -> Component:
    name = secret_name(loaded.instance)
    return Component(f"{loaded.instance.name}-secret",
                     list(loaded.secrets.resources(name, loaded.state.db_password)))


def install(name: str, email: str, php: str) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        check_instance_name(name)
        initial = {k: v for k, v in (("_MY_EMAIL", email), ("_PHP_FPM_VERSION", php)) if v}
        for key, value in initial.items():
            try:
                convert(key, value, "octopus")
            except Exception as exc:  # the schema's own message: what is allowed
                raise ConfigError(f'bad value "{value}": expected {exc}', key=key) from None
        instance = Instance(name)
        new = name not in model.instance_names(facts.target)
        if new:
            check_new_instance(facts, name)
        else:
            current = load_instance(config, facts, redactor, instance)
            for key, value in initial.items():
                if current.state.config.settings[key].raw != value:
                    raise ConfigError(
                        f"instance {name} exists with {key}="
                        f"{current.state.config.settings[key].raw}; change it in "
                        f"{instance.config_file}, then run `octopus up-stable {name}`")
        loaded = load_instance(config, facts, redactor, instance, initial=initial, new=new)
        return [_secret_component(loaded), *_converge(loaded)]

    return build


def upgrade(name: str) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        loaded = load_instance(config, facts, redactor, model.existing(facts.target, name))
        return [_secret_component(loaded), *_converge(loaded)]

    return build


def _index_php(tree: Path, what: str) -> None:
    if not (tree / "index.php").is_file():
        raise ConfigError(f"{what}: no index.php front controller at the top of the platform")


def platform_add(name: str, platform: str, path: str, git: str, ref: str) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        check_platform_name(platform)
        instance = model.existing(facts.target, name)
        if bool(path) == bool(git):
            raise UsageError("give the platform's code with exactly one of --path DIR and "
                             "--git URL")
        if ref and not git:
            raise UsageError("--ref goes with --git")
        loaded = load_instance(config, facts, redactor, instance)
        if any(p.name == platform for p in loaded.state.platforms):
            raise ConfigError(f"instance {name} already has a platform {platform}")
        if path:
            source = Path(path).resolve()
            if not source.is_dir():
                raise ConfigError(f"--path {path}: not a directory")
            _index_php(source, f"--path {path}")
            record = PlatformRecord(platform, str(source), "copy", "", platform_kind(source))
        else:
            if shutil.which("git") is None:
                raise ConfigError("git is not installed: add GIT to _XTRAS_LIST in "
                                  "/root/.barracuda.cnf and run `barracuda install`")
            record = PlatformRecord(platform, git, "git", ref, "auto")
        state = replace(loaded.state, platforms=[*loaded.state.platforms, record])
        return _converge(replace(loaded, state=state))

    return build


def platform_remove(name: str, platform: str) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        records = [p for p in loaded.state.platforms if p.name == platform]
        if not records:
            known = " ".join(p.name for p in loaded.state.platforms) or "none"
            raise ConfigError(f'instance {name} has no platform "{platform}" (platforms: '
                              f"{known})")
        users = [s.domain for s in loaded.state.sites if s.platform == platform]
        if users:
            raise ConfigError(f"platform {platform} is used by {' '.join(users)}: remove "
                              "those sites first")
        state = replace(loaded.state, platforms=[p for p in loaded.state.platforms
                                                 if p.name != platform])
        tree = instance.platform_dir(platform)
        dest = f"{instance.root}/backups/{archive_name(f'platform-{platform}')}"

        def make(ctx: Context, out: Path) -> Path:
            return make_archive(ctx.runner, ctx.target, out, kind="platform", instance=instance,
                                sites=[], platforms=records, tree=tree)

        return [
            Component(f"{name}-backup", [Archive(dest, make, f"platform {platform}")]),
            *_converge(replace(loaded, state=state)),
            Component(f"{name}-platform-removal", [
                TreeAbsent(tree, why="the platform was removed (its code is in the backup)"),
                Absent(instance.platform_record(platform), why="the platform was removed"),
            ]),
        ]

    return build


def _check_free(facts: Facts, names: Sequence[str], instance: str) -> None:
    seen: set[str] = set()
    for host in names:
        if host in seen:
            raise ConfigError(f"{host} is given twice")
        seen.add(host)
        owner = model.domain_owner(facts.target, host)
        if owner:
            raise ConfigError(f"duplicate domain {host}: instance {owner[0]} already serves it "
                              f"(site {owner[1]})")


@dataclass(frozen=True)
class SiteSettings:
    """A site's Nginx settings given on the command line; None = keep (or default)."""

    kind: str | None = None
    hsts: bool | None = None
    cache_ttl: int | None = None
    certificate: str | None = None
    certificate_key: str | None = None

    def applied(self, site: SiteRecord, facts: Facts) -> SiteRecord:
        """`site` with these settings, each checked first (one-line errors)."""
        changes: dict[str, object] = {}
        if self.kind is not None:
            if self.kind not in ("auto", *model.SITE_KINDS):
                raise UsageError(f'--type {self.kind}: expected one of auto '
                                 f'{" ".join(model.SITE_KINDS)}')
            changes["kind"] = "" if self.kind == "auto" else self.kind
        if self.hsts is not None:
            changes["hsts"] = self.hsts
        if self.cache_ttl is not None:
            top = int(load_profile("nginx")["speed_booster"]["ttl_max_s"])
            if not 0 <= self.cache_ttl <= top:
                raise UsageError(f"--cache-ttl {self.cache_ttl}: expected 0 (the default) to "
                                 f"{top} seconds")
            changes["cache_ttl"] = self.cache_ttl
        if (self.certificate is None) != (self.certificate_key is None):
            raise UsageError("give --certificate and --certificate-key together")
        if self.certificate is not None and self.certificate_key is not None:
            pair = [self.certificate, self.certificate_key]
            if any(pair) and not all(pair):
                raise UsageError("give --certificate and --certificate-key together")
            for option, path in zip(("--certificate", "--certificate-key"), pair, strict=True):
                if path and not (path.startswith("/") and facts.target.path(path).is_file()):
                    raise ConfigError(f"{option} {path}: no such file (an absolute path)")
            changes["certificate"], changes["certificate_key"] = pair
        return replace(site, **changes)  # type: ignore[arg-type]


def site_add(name: str, domain: str, platform: str, aliases: Sequence[str], php: str,
             settings: SiteSettings = SiteSettings()) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        site_domain = check_domain(domain)
        alias_names = [check_domain(a, "alias") for a in aliases]
        instance = model.existing(facts.target, name)
        _check_free(facts, [site_domain, *alias_names], name)
        loaded = load_instance(config, facts, redactor, instance)
        if not any(p.name == platform for p in loaded.state.platforms):
            known = " ".join(p.name for p in loaded.state.platforms) or "none"
            raise ConfigError(f'instance {name} has no platform "{platform}" (platforms: '
                              f"{known}); add it with `octopus platform add`")
        version = ""
        if php:
            version = resolve_php(loaded.state.config, "--php", php, loaded.stack)
        db_name = db_identifier(name, site_domain, DB_NAME_MAX)
        if any(s.db_name == db_name for s in loaded.state.sites):
            raise ConfigError(f"database {db_name} is taken in instance {name}")
        password = generate(int(loaded.state.config["_STRONG_PASSWORDS"]))
        redactor.add(password)
        site = SiteRecord(domain=site_domain, platform=platform, db_name=db_name,
                          db_user=db_identifier(name, site_domain, DB_USER_MAX),
                          db_password=password, aliases=tuple(alias_names), php=version)
        site = settings.applied(site, facts)
        state = replace(loaded.state, sites=[*loaded.state.sites, site])
        return _converge(replace(loaded, state=state))

    return build


def site_set(name: str, domain: str, settings: SiteSettings) -> Builder:
    """Change a site's Nginx settings (its record, then its vhost, in one run)."""

    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        site = _site(loaded, domain)
        new = settings.applied(site, facts)
        state = replace(loaded.state, sites=[new if s is site else s
                                             for s in loaded.state.sites])
        return _converge(replace(loaded, state=state))

    return build


def _site(loaded: Loaded, domain: str) -> SiteRecord:
    """The instance's site `domain`; ConfigError naming the sites it has."""
    for site in loaded.state.sites:
        if site.domain == domain.lower():
            return site
    known = " ".join(s.domain for s in loaded.state.sites) or "none"
    raise ConfigError(f'instance {loaded.instance.name} has no site "{domain}" (sites: {known})')


def _drop_sql(databases: Sequence[str], users: Sequence[str]) -> str:
    lines = [f"DROP DATABASE IF EXISTS `{d}`;" for d in databases]
    lines += [f"DROP USER IF EXISTS '{u}'@'localhost';" for u in users]
    return "\n".join(lines) + "\n"


def _gone(databases: Sequence[str], users: Sequence[str]) -> Callable[[Context], bool]:
    def done(ctx: Context) -> bool:
        names = ",".join(f"'{d}'" for d in databases) or "''"
        accounts = ",".join(f"'{u}'" for u in users) or "''"
        result = ctx.runner.run(["mariadb", "--batch", "--skip-column-names", "-e",
                                 f"SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA "
                                 f"WHERE SCHEMA_NAME IN ({names})) + (SELECT COUNT(*) FROM "
                                 f"mysql.global_priv WHERE User IN ({accounts}) AND "
                                 "Host='localhost')"], check=False, timeout=30)
        return result.ok and result.stdout.strip() == "0"

    return done


def _drop(label: str, databases: Sequence[str], users: Sequence[str]) -> Command:
    sql = _drop_sql(databases, users)
    return Command(label, ["mariadb", "--batch"], done=_gone(databases, users),
                   why=f"drop {' '.join([*databases, *users])} (backed up first)",
                   input=lambda ctx: sql)


def site_remove(name: str, domain: str) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        site = _site(loaded, domain)
        platforms = [p for p in loaded.state.platforms if p.name == site.platform]
        dest = f"{instance.root}/backups/{archive_name(site.domain)}"

        def make(ctx: Context, out: Path) -> Path:
            return make_archive(ctx.runner, ctx.target, out, kind="site", instance=instance,
                                sites=[site], platforms=platforms, tree=instance.site_dir(site))

        state = replace(loaded.state, sites=[s for s in loaded.state.sites if s is not site])
        return [
            Component(f"{name}-backup", [Archive(dest, make, f"site {site.domain}")]),
            *_converge(replace(loaded, state=state)),
            Component(f"{name}-site-removal", [
                _drop(f"{name}-drop-{site.domain}", [site.db_name], [site.db_user]),
                TreeAbsent(instance.site_dir(site), why="the site was removed (backed up)"),
                Absent(instance.site_record(site.domain), why="the site was removed"),
            ]),
        ]

    return build


def remove(name: str, force: bool) -> Builder:
    """Back the instance up whole, then take away its Nginx include, pools, databases,
    accounts and trees, in that order (traffic stops before anything it uses goes)."""

    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        state, stack = loaded.state, loaded.stack
        if state.sites and not force:
            raise UsageError(f"instance {name} has {len(state.sites)} sites "
                             f"({' '.join(s.domain for s in state.sites)}): remove them first, "
                             "or pass --force to remove the instance with them")
        archive_dir = str(load_profile("octopus")["removed_backups"])
        dest = f"{archive_dir}/{archive_name(name)}"

        def make(ctx: Context, out: Path) -> Path:
            return make_archive(ctx.runner, ctx.target, out, kind="instance", instance=instance,
                                sites=state.sites, platforms=state.platforms,
                                tree=instance.root, extra_files=[instance.config_file])

        nginx = stack.release.service("nginx")
        pools: list[Resource] = []
        for version in stack.release.php_versions:
            pools.append(Absent(instance.pool_file(version), why="the instance is removed",
                                notify=(f"reload:{stack.release.service('php', version)}",)))
        return [
            Component(f"{name}-backup", [Archive(dest, make, f"instance {name}")]),
            Component(f"{name}-nginx", [
                Absent(instance.nginx_include, why="the instance is removed",
                       notify=(f"reload:{nginx}",)),
            ], validators=[Validator(["nginx", "-t"], "nginx -t")]),
            Component(f"{name}-php", pools),
            Component(f"{name}-databases", [
                _drop(f"{name}-drop-databases", [s.db_name for s in state.sites],
                      [*(s.db_user for s in state.sites), name]),
            ]),
            Component(f"{name}-accounts", [
                *(UserAbsent(user) for user in instance.users),
                GroupAbsent(instance.group),
            ]),
            Component(f"{name}-trees", [
                TreeAbsent(instance.root, why="the instance is removed (backed up)"),
                TreeAbsent(instance.web_home, why="the instance is removed"),
                TreeAbsent(instance.ftp_home, why="the instance is removed"),
                Absent(instance.config_file, why="the instance is removed"),
                Absent(f"{SECRETS_DIR}/{secret_name(instance)}", why="the instance is removed"),
            ]),
        ]

    return build
