"""Which certificate a site's vhost serves, and the resources that issue Let's Encrypt ones.

A site's own certificate (--certificate) wins; else its --https choice (letsencrypt or
wildcard); else its instance's _HTTPS; else the machine's _HTTPS. A Let's Encrypt site's
vhost names certbot's lineage (named after the site's domain), which the certificate
resource issues before the Nginx component renders the vhost: a failed issue fails the run,
which puts the site's record and vhost back, so the site keeps the certificate it had."""

from __future__ import annotations

import re
from dataclasses import dataclass

from installer.config import Config
from installer.data import load_profile
from installer.errors import UsageError
from installer.octopus.model import SiteRecord
from installer.resources.base import Resource
from installer.stack import acme

LETSENCRYPT = "letsencrypt"
WILDCARD = "wildcard"
OWN = "own"
CHOICES = (LETSENCRYPT, WILDCARD)  # what --https takes, besides `default`


@dataclass(frozen=True)
class HttpsDefaults:
    """The machine's and the instance's say on certificates."""

    source: str = WILDCARD  # the default of sites that did not choose
    server: str = ""  # the ACME directory URL
    email: str = ""  # the ACME account's address
    ca_bundle: str = ""  # the CA of a private ACME server's HTTPS (_LETSENCRYPT_CA)
    systemd: bool = True  # renewals run from certbot's timer, else from cron


def defaults(machine: Config, instance: Config, init_system: str) -> HttpsDefaults:
    choice = str(instance["_HTTPS"])
    if choice == "AUTO":
        choice = str(machine["_HTTPS"])
    email = str(instance["_MY_EMAIL"] or "") or str(machine["_MY_EMAIL"] or "")
    return HttpsDefaults(source=choice.lower(), email=email,
                         ca_bundle=str(machine["_LETSENCRYPT_CA"] or ""),
                         systemd=init_system == "systemd",
                         server=acme.directory_url(str(machine["_LETSENCRYPT_URL"])))


def source(site: SiteRecord, wanted: HttpsDefaults) -> str:
    """own, letsencrypt or wildcard."""
    if site.certificate:
        return OWN
    return site.https or wanted.source


def acme_names(site: SiteRecord) -> tuple[str, ...]:
    """The names a Let's Encrypt certificate covers: the domain and the aliases, the dev
    aliases only when the site asked for them (--https-dev-aliases)."""
    dev = re.compile(load_profile("nginx")["dev_alias_regex"])
    return (site.domain, *(n for n in site.aliases if site.https_dev or not dev.search(n)))


def served(site: SiteRecord, wanted: HttpsDefaults, paths: dict[str, str]) -> tuple[str, str]:
    """(certificate, key) the site's vhost names."""
    chosen = source(site, wanted)
    if chosen == OWN:
        return site.certificate, site.certificate_key
    if chosen == LETSENCRYPT:
        return acme.lineage(paths["letsencrypt_dir"], site.domain)
    return paths["ssl_wildcard_cert"], paths["ssl_wildcard_key"]


def resources(sites: list[SiteRecord], wanted: HttpsDefaults,
              paths: dict[str, str]) -> list[Resource]:
    """certbot, its renewal and one certificate per Let's Encrypt site; nothing when no
    site wants one (what an earlier one installed stays: renewing nothing is harmless)."""
    chosen = [s for s in sites if source(s, wanted) == LETSENCRYPT]
    if not chosen:
        return []
    renewal = acme.renewal(paths, systemd=wanted.systemd)
    after = tuple(r.id for r in renewal)
    return [*renewal, *(acme.AcmeCertificate(
        name=site.domain, names=acme_names(site), server=wanted.server, email=wanted.email,
        webroot=paths["acme_webroot"], letsencrypt_dir=paths["letsencrypt_dir"],
        ca_bundle=wanted.ca_bundle,
        requires=after) for site in chosen)]


def choice(https: str | None, dev: bool | None, own: str | None) -> dict[str, object]:
    """The record changes of `--https`, `--https-dev-aliases` and `--certificate` (`own`)
    (checked, one line)."""
    changes: dict[str, object] = {}
    if https is not None:
        if https not in (*CHOICES, "default"):
            raise UsageError(f"--https {https}: expected one of {' '.join(CHOICES)} default")
        if own:
            raise UsageError("give --https or --certificate, not both")
        changes.update(https="" if https == "default" else https, certificate="",
                       certificate_key="")
    elif own is not None:  # --certificate: its own one, or "" = the wildcard one
        changes["https"] = "" if own else WILDCARD
    if dev is not None:
        changes["https_dev"] = dev
    return changes
