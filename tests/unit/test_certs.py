"""Let's Encrypt certificates: which certificate a vhost serves, what is issued for which
names, the renewal per init system, certbot's errors in one line, the refusal of a name that
points elsewhere, and the CLI's one-line errors (the box test issues for real)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from installer.agents.monitor import state as state_file
from installer.config.cnf import parse_text
from installer.config.schema import validate
from installer.data import load_profile
from installer.errors import ConfigError, UsageError
from installer.octopus import certificate
from installer.octopus.components import Phase, build_instance
from installer.octopus.model import SiteRecord
from installer.resources.cron import CronJob
from installer.resources.files import File
from installer.resources.system import Service
from installer.runner import SubprocessRunner
from installer.stack import acme
from installer.target import Target
from tests.cli.test_cli import run
from tests.unit.test_monitor import FakeManager, World, lines, make_monitor
from tests.unit.test_octopus import instance_state, two_php_stack

PATHS = {k: str(v) for k, v in load_profile("paths").items()}
SITE = SiteRecord("a.example.org", "web", "o1_a", "o1_a", "pw",
                  aliases=("www.a.example.org", "dev.a.example.org"))
LE = certificate.HttpsDefaults(source="letsencrypt", server="https://acme.test/dir",
                               email="ops@example.org")


def machine(text: str) -> object:
    return validate(parse_text(text, "/root/.barracuda.cnf"))


def test_the_acme_directory_is_production_staging_or_a_url() -> None:
    assert acme.directory_url("production") == load_profile("acme")["directories"]["production"]
    assert "staging" in acme.directory_url("staging")
    assert acme.directory_url("https://ca.test/dir") == "https://ca.test/dir"
    with pytest.raises(ConfigError, match=r"_LETSENCRYPT_URL.*production, staging or an ACME"):
        machine('_LETSENCRYPT_URL="ftp://x"\n')


def test_defaults_follow_the_instance_then_the_machine() -> None:
    box = machine('_HTTPS="LETSENCRYPT"\n_MY_EMAIL="root@example.org"\n'
                  '_LETSENCRYPT_URL="staging"\n_LETSENCRYPT_CA="/etc/ca.pem"\n')
    instance = instance_state("8.2", []).config
    wanted = certificate.defaults(box, instance, "sysvinit")  # type: ignore[arg-type]
    assert wanted == certificate.HttpsDefaults(
        source="letsencrypt", server=acme.directory_url("staging"), email="root@example.org",
        ca_bundle="/etc/ca.pem", systemd=False)
    own = validate(parse_text('_HTTPS="WILDCARD"\n_MY_EMAIL="o1@example.org"\n',
                              "/root/.o1.octopus.cnf"), profile="octopus")
    wanted = certificate.defaults(box, own, "systemd")  # type: ignore[arg-type]
    assert (wanted.source, wanted.email, wanted.systemd) == ("wildcard", "o1@example.org",
                                                              True)


def test_the_served_certificate_own_then_choice_then_default() -> None:
    wildcard = (PATHS["ssl_wildcard_cert"], PATHS["ssl_wildcard_key"])
    lineage = ("/etc/letsencrypt/live/a.example.org/fullchain.pem",
               "/etc/letsencrypt/live/a.example.org/privkey.pem")
    assert certificate.served(SITE, certificate.HttpsDefaults(), PATHS) == wildcard
    assert certificate.served(SITE, LE, PATHS) == lineage
    assert certificate.served(replace(SITE, https="wildcard"), LE, PATHS) == wildcard
    own = replace(SITE, https="letsencrypt", certificate="/c.pem", certificate_key="/k.pem")
    assert certificate.served(own, LE, PATHS) == ("/c.pem", "/k.pem")


def test_dev_aliases_are_certified_only_when_asked() -> None:
    assert certificate.acme_names(SITE) == ("a.example.org", "www.a.example.org")
    assert certificate.acme_names(replace(SITE, https_dev=True)) == SITE.names


def test_https_choices_and_their_refusals() -> None:
    assert certificate.choice("letsencrypt", None, None) == {
        "https": "letsencrypt", "certificate": "", "certificate_key": ""}
    assert certificate.choice("default", True, None)["https"] == ""
    assert certificate.choice(None, True, None) == {"https_dev": True}
    assert certificate.choice(None, None, "") == {"https": "wildcard"}
    assert certificate.choice(None, None, "/c.pem") == {"https": ""}
    with pytest.raises(UsageError, match="--https acme: expected one of letsencrypt wildcard"):
        certificate.choice("acme", None, None)
    with pytest.raises(UsageError, match="not both"):
        certificate.choice("wildcard", None, "/c.pem")


def test_certificates_are_issued_before_the_vhosts_name_them() -> None:
    state = replace(instance_state("8.2", [replace(SITE, https="letsencrypt")]), https=LE)
    components = build_instance(state, two_php_stack(), [])
    certs = next(c for c in components if c.name == "o1-certificates")
    nginx = next(c for c in components if c.name == "o1-nginx")
    assert certs.phase == Phase.CERTIFICATES < nginx.phase
    issue = [r for r in certs.resources if isinstance(r, acme.AcmeCertificate)]
    assert [(r.name, r.names, r.server, r.email) for r in issue] == [
        ("a.example.org", ("a.example.org", "www.a.example.org"), LE.server, LE.email)]
    vhost = next(r for r in nginx.resources if isinstance(r, File) and "vhost.d" in r.path)
    assert b"ssl_certificate /etc/letsencrypt/live/a.example.org/fullchain.pem;" in vhost.wanted
    assert b"location ^~ /.well-known/acme-challenge/" in vhost.wanted
    # No Let's Encrypt site: no certbot, nothing issued.
    plain = build_instance(instance_state("8.2", [SITE]), two_php_stack(), [])
    assert next(c for c in plain if c.name == "o1-certificates").resources == []


def test_renewal_runs_from_certbots_timer_or_from_cron() -> None:
    spec = load_profile("acme")
    systemd = acme.renewal(PATHS, systemd=True)
    dropin = next(r for r in systemd if isinstance(r, File) and r.path.endswith(".conf"))
    assert "ExecStart=\nExecStart=/usr/bin/env PATH=" in dropin.wanted.decode()
    assert [r.name for r in systemd if isinstance(r, Service)] == [spec["systemd_timer"]]
    sysv = acme.renewal(PATHS, systemd=False)
    cron = next(r for r in sysv if isinstance(r, File) and r.path.startswith("/etc/cron.d/"))
    line = CronJob("certificate renewal", spec["cron_schedule"], spec["renew_command"]).line()
    assert line in cron.wanted.decode()
    assert not any(isinstance(r, Service) for r in sysv)
    hook = next(r for r in sysv if isinstance(r, File) and r.path == spec["deploy_hook"])
    assert hook.mode == 0o755 and spec["deploy_command"] in hook.wanted.decode()


@pytest.mark.parametrize(("output", "line"), [
    ("Saving debug log to /var/log/letsencrypt/letsencrypt.log\nCertbot failed to "
     "authenticate some domains (authenticator: webroot).\n  Domain: a.example.org\n"
     "  Type:   connection\n  Detail: 127.0.0.1: Fetching http://a.example.org/: Connection "
     "refused\n\nHint: The Certificate Authority failed\nAsk for help or search for "
     "solutions at https://community.letsencrypt.org.",
     "127.0.0.1: Fetching http://a.example.org/: Connection refused"),
    ("Saving debug log to /var/log/letsencrypt/letsencrypt.log\nAn unexpected error occurred:"
     "\nrequests.exceptions.ConnectionError: HTTPSConnectionPool(host='127.0.0.1', "
     "port=14000): Max retries exceeded\nAsk for help or search for solutions at x.\n"
     "See the logfile /var/log/letsencrypt/letsencrypt.log for details.",
     "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='127.0.0.1', "
     "port=14000): Max retries exceeded"),
    ("", "certbot failed without a message"),
])
def test_certbots_error_in_one_line(output: str, line: str) -> None:
    assert acme.acme_error(output) == line


def test_a_name_must_resolve_to_this_machine() -> None:
    assert acme.is_local("127.0.0.1") and not acme.is_local("192.0.2.10")
    acme.check_resolves(("127.0.0.1",))
    with pytest.raises(ConfigError, match=r"^certificate for 192.0.2.10: it resolves to "
                                          r"192.0.2.10, not to this machine"):
        acme.check_resolves(("192.0.2.10",))
    with pytest.raises(ConfigError, match="does not resolve"):
        acme.check_resolves(("no-such-name.invalid",))


def test_cli_refuses_a_bad_https_choice_in_one_line(tmp_path: Path) -> None:
    assert run("barracuda", "install", "--root", str(tmp_path), "--yes").returncode == 0
    src = tmp_path / "src"
    src.mkdir()
    (src / "index.php").write_text("<?php echo 1;")
    for args in (["install", "o1"], ["platform", "add", "o1", "web", "--path", str(src)]):
        assert run("octopus", *args, "--root", str(tmp_path), "--yes").returncode == 0
    bad = run("octopus", "site", "add", "o1", "a.example.org", "--platform", "web", "--https",
              "acme", "--root", str(tmp_path), "--yes")
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "error: --https acme: expected one of letsencrypt wildcard default"]
    planned = run("octopus", "site", "add", "o1", "a.example.org", "--platform", "web",
                  "--https", "letsencrypt", "--root", str(tmp_path), "--yes")
    assert planned.returncode == 0, planned.stderr
    record = (tmp_path / "data/disk/o1/config/sites/a.example.org.yml").read_text()
    assert "https: letsencrypt" in record


def self_signed(path: Path, name: str, days: int) -> None:
    path.mkdir(parents=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                    str(days), "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", str(path / "privkey.pem"), "-out", str(path / "fullchain.pem")],
                   check=True, capture_output=True)


def test_the_monitor_alerts_once_for_a_certificate_close_to_expiry(tmp_path: Path) -> None:
    live = tmp_path / "root/etc/letsencrypt/live"
    self_signed(live / "soon.example.org", "soon.example.org", 3)
    self_signed(live / "fine.example.org", "fine.example.org", 60)
    world = World(now=time.time())
    monitor = make_monitor(tmp_path, world, FakeManager())
    monitor.root = Target(tmp_path / "root")
    monitor.incidents.runner = SubprocessRunner()
    state = state_file.empty()
    monitor.cycle(state)
    alerts = [i for i in lines(tmp_path) if i["check"].startswith("certificate:")]
    assert [(i["check"], i["action"]) for i in alerts] == [
        ("certificate:soon.example.org", "alert")]
    assert state["checks"]["certificate:fine.example.org"] == "OK"
    world.now += 7200  # read again an hour later: no second alert
    monitor.cycle(state)
    assert len([i for i in lines(tmp_path) if i["check"].startswith("certificate:")]) == 1
