"""The workflows of `octopus client ...` and `octopus key ...`: each changes the instance's
access records (installer/octopus/access.py) and converges the instance with them, so a
failed run rolls the records back with the accounts, keys and grants."""

from __future__ import annotations

from dataclasses import replace

from installer.config import Config
from installer.facts import Facts
from installer.octopus import access, ftp_password, model
from installer.octopus.components import Phase
from installer.octopus.loader import Loaded, load_instance
from installer.octopus.sites.common import converge, secret_component
from installer.plan import Builder, Component
from installer.runlog import Redactor


def _run(loaded: Loaded, state: access.AccessState) -> list[Component]:
    changed = replace(loaded, state=replace(loaded.state, access=state))
    return [secret_component(changed), *converge(changed)]


def changing(name: str, change: access.Edit) -> Builder:
    """A converge of instance `name` with its access records changed by `change`."""

    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        loaded = load_instance(config, facts, redactor, model.existing(facts.target, name))
        return _run(loaded, change(loaded.state.access))

    return build


def client_add(name: str, client: str, email: str) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        return changing(name, access.client_add(instance, client, email, facts))(
            config, facts, redactor)

    return build


def client_grant(name: str, client: str, domain: str, grant: bool) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        sites = model.sites(facts.target, instance)
        return changing(name, access.client_grant(instance, client, domain.lower(), sites,
                                                  grant))(config, facts, redactor)

    return build


def client_remove(name: str, client: str) -> Builder:
    def build(config: Config, facts: Facts, redactor: Redactor) -> list[Component]:
        instance = model.existing(facts.target, name)
        loaded = load_instance(config, facts, redactor, instance)
        record = access.find_client(loaded.state.access, instance, client)
        kept = replace(loaded.state.access, records=[
            r for r in loaded.state.access.records if r.account != record.account])
        gone = access.removal(instance, loaded.state.sites, record.account)
        return [*_run(loaded, kept),
                Component(f"{name}-client-{client}", gone, phase=Phase.CLEANUP),
                # its FTPS login goes with the account
                *ftp_password.forget(facts, instance, (record.account,))]

    return build
