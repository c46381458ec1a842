"""Reading an instance for a converge: its config (or the one a new instance will get), its
records, the machine's stack data and the instance's kept database password."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from installer.config import Config, default_text, load
from installer.config.cnf import parse_text
from installer.config.schema import validate
from installer.drupal.settings import RedisCredentials
from installer.errors import ConfigError
from installer.facts import Facts
from installer.octopus import access, certificate, codebase, model
from installer.octopus.components import InstanceState, resolve_php
from installer.octopus.model import Instance
from installer.octopus.names import check_accounts_free, db_prefix
from installer.runlog import Redactor
from installer.stack import stack_context
from installer.stack.context import StackContext
from installer.stack.secrets import Secrets


@dataclass(frozen=True)
class Loaded:
    state: InstanceState
    stack: StackContext
    secrets: Secrets
    known_vhosts: list[str]

    @property
    def instance(self) -> Instance:
        return self.state.instance


def instance_config(facts: Facts, instance: Instance,
                    initial: Mapping[str, str] | None = None) -> Config:
    """The instance's config file, or (for a new instance) the defaults with `initial` over
    them, validated exactly as the file will be."""
    real = facts.target.path(instance.config_file)
    if os.path.lexists(real):  # a link, FIFO or directory there is refused by load()
        return load(real, profile="octopus")
    text = default_text("octopus", initial or {})
    return validate(parse_text(text, str(real)), exists=False, profile="octopus")


def secret_name(instance: Instance) -> str:
    return f"octopus-{instance.name}-db"


def redis_secret_name(instance: Instance) -> str:
    return f"octopus-{instance.name}-redis"


def load_instance(config: Config, facts: Facts, redactor: Redactor, instance: Instance, *,
                  initial: Mapping[str, str] | None = None, new: bool = False) -> Loaded:
    """Everything `build_instance` needs; the instance's PHP version checked against what
    the machine has installed."""
    secrets = Secrets(facts, redactor, config["_STRONG_PASSWORDS"])
    stack = stack_context(config, facts, secrets)
    cfg = instance_config(facts, instance, initial)
    php = resolve_php(cfg, "_PHP_FPM_VERSION", str(cfg["_PHP_FPM_VERSION"]), stack)
    settings = dict(cfg.settings)
    settings["_PHP_FPM_VERSION"] = replace(settings["_PHP_FPM_VERSION"], value=php)
    cfg = replace(cfg, settings=settings)
    target = facts.target
    names = set(model.instance_names(target))
    if new:
        names.add(instance.name)
    sites = model.sites(target, instance)
    for site in sites:
        redactor.add(site.db_password)
    vhost_dir = target.path(instance.vhost_dir)
    known = sorted(f"{instance.vhost_dir}/{p.name}" for p in vhost_dir.glob("*.conf")) \
        if vhost_dir.is_dir() else []
    records = model.platforms(target, instance)
    codebases = {p.name: found for p in records
                 if (found := codebase.read(target, instance, p.name)) is not None}
    state = InstanceState(
        instance=instance, config=cfg, platforms=records, sites=sites, codebases=codebases,
        instances=len(names), db_password=secrets.get(secret_name(instance)),
        redis=RedisCredentials(instance.name, secrets.get(redis_secret_name(instance))),
        initial=dict(initial or {}), https=certificate.defaults(config, cfg, facts.init_system),
        access=access.load(target, instance),
        detected={p.name: model.platform_kind(target.path(instance.platform_dir(p.name)))
                  for p in model.platforms(target, instance) if p.kind == "auto"},
    )
    return Loaded(state, stack, secrets, known)


def check_new_instance(facts: Facts, name: str) -> None:
    """A new instance may not reuse a system account's name, nor share the database prefix
    of another instance (o.1 and o-1 would both be o_1)."""
    check_accounts_free(name, model.instance_names(facts.target))
    for user in Instance(name).users:
        if facts.user(user) is not None:
            raise ConfigError(f'cannot create instance "{name}": a user named {user} already '
                              "exists on this machine")
    if facts.group_id(name) is not None:
        raise ConfigError(f'cannot create instance "{name}": a group named {name} already '
                          "exists on this machine")
    for other in model.instance_names(facts.target):
        if db_prefix(other) == db_prefix(name):
            raise ConfigError(f'cannot create instance "{name}": its database prefix '
                              f"{db_prefix(name)}_ is the one of instance {other}")
