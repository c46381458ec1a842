"""The instance workflows: `octopus install` (create or converge an instance), `up-stable`
/ `up-head` (converge it with the installed tool's templates) and `remove` (archive it
whole, then take away its Nginx include, pools, databases, accounts and trees, in that
order: traffic stops before anything it uses goes)."""

from __future__ import annotations

from pathlib import Path

from installer.config import Config
from installer.config.schema import BadValue, convert
from installer.config.text import shown
from installer.data import load_profile
from installer.errors import ConfigError, UsageError
from installer.facts import Facts
from installer.octopus import access, ftp_password, model
from installer.octopus.archive import Archive, archive_name, make_archive
from installer.octopus.components import Phase
from installer.octopus.loader import (
    check_new_instance,
    load_instance,
    redis_secret_name,
    secret_name,
)
from installer.octopus.model import Instance
from installer.octopus.names import check_instance_name
from installer.octopus.sites.common import converge, secret_component
from installer.octopus.sites.verify import health_component
from installer.plan import Builder, Component, Validator
from installer.resources.accounts import GroupAbsent, UserAbsent
from installer.resources.base import Context, Resource, reload
from installer.resources.cron import CRON_DIR
from installer.resources.database import DatabasesAbsent
from installer.resources.files import Absent
from installer.resources.trees import TreeAbsent
from installer.runlog import Redactor
from installer.stack import redis
from installer.stack.secrets import SECRETS_DIR


def install(name: str, email: str, php: str) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        check_instance_name(name)
        initial = {k: v for k, v in (("_MY_EMAIL", email), ("_PHP_FPM_VERSION", php)) if v}
        for key, value in initial.items():
            try:
                convert(key, value, "octopus")
            except BadValue as exc:  # the schema's own message: what is allowed
                raise ConfigError(f"bad value {shown(value)}: expected {exc}", key=key) from None
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
        return [secret_component(loaded), *converge(loaded)]

    return build


def upgrade(name: str) -> Builder:
    """The instance converged, then every installed site verified (it bootstraps and its
    front page answers)."""

    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        loaded = load_instance(config, facts, redactor, model.existing(facts.target, name))
        installed = [s for s in loaded.state.sites if s.installed]
        checks = [health_component(loaded.state, installed)] if installed else []
        return [secret_component(loaded), *converge(loaded), *checks]

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
                                notify=(reload(stack.release.service('php', version)),)))
        return [
            Component(f"{name}-backup", [Archive(dest, make, f"instance {name}")],
                      phase=Phase.BACKUP),
            Component(f"{name}-nginx", [
                Absent(instance.nginx_include, why="the instance is removed",
                       notify=(reload(nginx),)),
            ], validators=[Validator(["nginx", "-t"], "nginx -t")], phase=Phase.NGINX),
            Component(f"{name}-php", pools, phase=Phase.CLEANUP),
            Component(f"{name}-databases", [
                DatabasesAbsent(f"{name}-all", tuple(s.db_name for s in state.sites),
                                (*(s.db_user for s in state.sites), name),
                                why="the instance is removed (backed up first)"),
            ], phase=Phase.CLEANUP),
            Component(f"{name}-accounts", [
                *(UserAbsent(user) for user in instance.users),
                GroupAbsent(instance.secrets_group),
                GroupAbsent(instance.group),
            ], phase=Phase.CLEANUP),
            Component(f"{name}-trees", [
                TreeAbsent(instance.root, why="the instance is removed (backed up)"),
                TreeAbsent(instance.web_home, why="the instance is removed"),
                TreeAbsent(instance.ftp_home, why="the instance is removed"),
                Absent(instance.config_file, why="the instance is removed"),
                Absent(f"{SECRETS_DIR}/{secret_name(instance)}", why="the instance is removed"),
                Absent(f"{CRON_DIR}/{instance.cron_file}", why="the instance is removed"),
                Absent(f"{SECRETS_DIR}/{redis_secret_name(instance)}",
                       why="the instance is removed"),
                Absent(f"{redis.ACL_DIR}/{name}.conf", why="the instance is removed"),
                redis.RedisUser(user=name, socket=stack.paths["redis_socket"],
                                admin_password=stack.redis_password, present=False),
                *access.instance_removal(instance, state.access),
            ], phase=Phase.CLEANUP),
            *ftp_password.forget(facts, instance),  # its FTPS logins go with its accounts
        ]

    return build
