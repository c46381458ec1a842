"""Let's Encrypt certificates end to end against a real ACME server in the box: Debian's
`pebble` (its HTTPS API signed by a CA made here, trusted through _LETSENCRYPT_CA only),
validating http-01 on the box's Nginx port 80, the test names resolved to the box by
/etc/hosts. Nothing leaves the box. Issue, verify over HTTPS with pebble's root, a forced
renewal under a request loop, an ACME server that is gone (issue and renewal), a name that
points elsewhere, and a second run that changes nothing. On systemd-bookworm; BOX_VARIANTS
naming sysv-bookworm runs it there too (the renewal from cron instead of certbot's timer)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator

import pytest

from tests.box.boxes import Box
from tests.box.conftest import installed_box, octopus
from tests.box.test_install import summary

PEBBLE = "/root/pebble"
DIRECTORY = "https://127.0.0.1:14000/dir"
ONE, WWW, DEV = ("one.example.test", "www.one.example.test", "dev.one.example.test")
TWO, THREE = "two.example.test", "three.example.test"
ELSEWHERE = "elsewhere.example.test"
CNF = (f'_MY_EMAIL="ops@example.test"\n_LETSENCRYPT_URL="{DIRECTORY}"\n'
       f'_LETSENCRYPT_CA="{PEBBLE}/ca.pem"\n')
PEBBLE_CONFIG = {"pebble": {
    "listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
    "certificate": f"{PEBBLE}/cert.pem", "privateKey": f"{PEBBLE}/key.pem",
    "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
    "externalAccountBindingRequired": False}}
# A CA for pebble's own HTTPS API, and its certificate for 127.0.0.1.
MAKE_CA = f"""set -e
cd {PEBBLE}
openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj /CN=test-acme-api-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out api.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > api.ext
openssl x509 -req -in api.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3 \
  -extfile api.ext -out cert.pem 2>/dev/null
"""


def start_pebble(box: Box) -> None:
    box.run(f"cd {PEBBLE} && PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 "
            f"setsid pebble -config {PEBBLE}/config.json >>{PEBBLE}/pebble.log 2>&1 "
            f"</dev/null & echo $! > {PEBBLE}/pid")
    for _ in range(100):
        if box.run(f"curl -sf --cacert {PEBBLE}/ca.pem {DIRECTORY} -o /dev/null",
                   check=False).returncode == 0:
            break
        time.sleep(0.2)
    else:
        pytest.fail("pebble did not answer: " + box.read_file(f"{PEBBLE}/pebble.log")[-2000:])
    # The root pebble made at this start signs every certificate it issues.
    box.run(f"curl -sf --cacert {PEBBLE}/ca.pem https://127.0.0.1:15000/roots/0 "
            f"-o {PEBBLE}/root.pem")


def stop_pebble(box: Box) -> None:
    box.run(f"kill $(cat {PEBBLE}/pid); while kill -0 $(cat {PEBBLE}/pid) 2>/dev/null; "
            "do sleep 0.1; done")


VARIANTS = [v for v in os.environ.get("BOX_VARIANTS", "systemd-bookworm").split(",")
            if v.strip() in ("systemd-bookworm", "sysv-bookworm")] or ["systemd-bookworm"]


@pytest.fixture(scope="module", params=VARIANTS)
def box(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[Box]:
    kind, _, release = str(request.param).strip().partition("-")
    with installed_box(request.config, kind=kind, release=release, cnf=CNF) as installed:
        installed.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "pebble"])
        installed.run(["mkdir", "-p", PEBBLE])
        installed.run(MAKE_CA)
        installed.write_file(f"{PEBBLE}/config.json", json.dumps(PEBBLE_CONFIG))
        installed.run(f"printf '127.0.0.1 {ONE} {WWW} {TWO} {THREE}\\n192.0.2.10 {ELSEWHERE}\\n' "
                      ">> /etc/hosts")
        start_pebble(installed)
        installed.write_file("/root/web/index.php", "<?php echo 'site=' . $_SERVER['HTTP_HOST'];")
        octopus(installed, "install", "o1", "--yes")
        octopus(installed, "platform", "add", "o1", "web", "--path", "/root/web", "--yes")
        yield installed


def served(box: Box, host: str) -> dict[str, str]:
    """Serial, issuer and names of the certificate Nginx serves for `host`."""
    out = box.run(f"echo | openssl s_client -connect 127.0.0.1:443 -servername {host} "
                  "2>/dev/null | openssl x509 -noout -serial -issuer -ext subjectAltName").stdout
    serial = re.search(r"serial=(\w+)", out)
    issuer = re.search(r"issuer=(.*)", out)
    return {"serial": serial.group(1) if serial else "", "issuer": issuer.group(1) if issuer
            else "", "names": " ".join(sorted(re.findall(r"DNS:([^,\s]+)", out)))}


def verified(box: Box, host: str) -> tuple[int, str]:
    """(curl's exit code, body) of https://HOST/ verified against pebble's root only."""
    result = box.run(f"curl -sS --cacert {PEBBLE}/root.pem --resolve {host}:443:127.0.0.1 "
                     f"https://{host}/", check=False)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def issued(box: Box) -> dict[str, str]:
    octopus(box, "site", "add", "o1", ONE, "--platform", "web", "--alias", WWW, "--alias",
            DEV, "--https", "letsencrypt", "--yes")
    return served(box, ONE)


def test_a_letsencrypt_site_gets_a_certificate_from_the_acme_server(
        box: Box, issued: dict[str, str]) -> None:
    assert "Pebble" in issued["issuer"], issued
    assert issued["names"] == f"{ONE} {WWW}"  # the dev alias is not in it
    for host in (ONE, WWW):
        assert verified(box, host) == (0, f"site={host}")
    # Not trusted without pebble's root: the test CA is trusted only where the test says.
    assert box.run(f"curl -sS --resolve {ONE}:443:127.0.0.1 https://{ONE}/",
                   check=False).returncode == 60
    listed = json.loads(octopus(box, "site", "list", "o1", "--json").stdout)
    row = next(site for site in listed["sites"] if site["domain"] == ONE)
    assert row["certificate_issuer"].startswith("Pebble Intermediate")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["certificate_expires"])
    assert "Pebble Intermediate" in octopus(box, "site", "list", "o1").stdout


def test_renewal_is_scheduled_with_the_deploy_hook(box: Box, issued: dict[str, str]) -> None:
    if box.run("test -d /run/systemd/system", check=False).returncode == 0:
        assert "octopus certificate renew" in box.run(
            "systemctl show --property=ExecStart --value certbot.service").stdout
        assert box.run("systemctl is-active certbot.timer").stdout.strip() == "active"
    else:
        cron = box.host.file("/etc/cron.d/barracuda-certbot").content_string
        assert re.search(r"^\S+ \S+ \* \* \* root octopus certificate renew$", cron, re.M), cron
    hook = box.host.file("/etc/letsencrypt/renewal-hooks/deploy/barracuda-nginx")
    assert hook.mode == 0o755 and "octopus certificate deployed" in hook.content_string


def test_a_second_run_changes_nothing(box: Box, issued: dict[str, str]) -> None:
    again = octopus(box, "up-stable", "o1", "--yes")
    assert summary(again.stderr).startswith("0 changed"), again.stderr[-2000:]
    assert served(box, ONE)["serial"] == issued["serial"]


def test_a_forced_renewal_is_served_without_a_failed_request(
        box: Box, issued: dict[str, str]) -> None:
    before = served(box, ONE)["serial"]
    box.run(f"rm -f /tmp/stop /tmp/loop.log; ( while [ ! -e /tmp/stop ]; do curl -s -o "
            f"/dev/null -w '%{{http_code}}\\n' --cacert {PEBBLE}/root.pem --resolve "
            f"{ONE}:443:127.0.0.1 https://{ONE}/ >> /tmp/loop.log || echo FAIL >> "
            "/tmp/loop.log; done ) >/dev/null 2>&1 & echo $! > /tmp/loop.pid")
    try:
        renewed = octopus(box, "certificate", "renew", "--force")
        time.sleep(1)
    finally:
        box.run("touch /tmp/stop; while kill -0 $(cat /tmp/loop.pid) 2>/dev/null; do "
                "sleep 0.1; done")
    assert "renewed" in renewed.stdout + renewed.stderr
    codes = box.read_file("/tmp/loop.log").split()
    assert len(codes) > 10 and set(codes) == {"200"}, codes
    print(f"\n[certs] {len(codes)} requests during the renewal, all 200")
    after = served(box, ONE)
    assert after["serial"] != before and after["names"] == f"{ONE} {WWW}"
    assert verified(box, ONE) == (0, f"site={ONE}")


def test_a_name_pointing_elsewhere_is_refused_before_asking(
        box: Box, issued: dict[str, str]) -> None:
    refused = octopus(box, "site", "add", "o1", ELSEWHERE, "--platform", "web", "--https",
                      "letsencrypt", "--yes", check=False)
    assert refused.returncode != 0
    assert f"certificate for {ELSEWHERE}: it resolves to 192.0.2.10" in refused.stderr
    assert "Rolled back" not in refused.stderr  # refused while planning: nothing was made
    print(f"\n[certs] refused name: {refused.stderr.strip().splitlines()[-1]}")
    assert not box.host.file(f"/data/disk/o1/config/sites/{ELSEWHERE}.yml").exists


@pytest.fixture(scope="module")
def two(box: Box) -> str:
    octopus(box, "site", "add", "o1", TWO, "--platform", "web", "--yes")
    assert served(box, TWO)["names"].startswith("*.")
    return TWO


def test_to_letsencrypt_and_back_to_the_wildcard(box: Box, issued: dict[str, str],
                                                 two: str) -> None:
    octopus(box, "site", "set", "o1", TWO, "--https", "letsencrypt", "--yes")
    assert "Pebble" in served(box, TWO)["issuer"] and verified(box, TWO)[0] == 0
    octopus(box, "site", "set", "o1", TWO, "--https", "wildcard", "--yes")
    assert served(box, TWO)["names"].startswith("*.")


def test_acme_server_gone_keeps_the_previous_certificates(
        box: Box, issued: dict[str, str]) -> None:
    """Last: pebble forgets its accounts and makes a new root when it starts again."""
    octopus(box, "site", "add", "o1", THREE, "--platform", "web", "--yes")
    wildcard = served(box, THREE)
    assert wildcard["names"].startswith("*.")
    current = served(box, ONE)["serial"]
    stop_pebble(box)
    failed = octopus(box, "site", "set", "o1", THREE, "--https", "letsencrypt", "--yes",
                     check=False)
    assert failed.returncode != 0
    last = failed.stderr.strip().splitlines()[-1]
    assert THREE in last and "127.0.0.1:14000" in last, failed.stderr[-2000:]
    print(f"\n[certs] refused issue: {last}")
    assert served(box, THREE) == wildcard
    record = box.read_file(f"/data/disk/o1/config/sites/{THREE}.yml")
    assert "https: ''" in record, record
    # A renewal that fails is an incident; the site keeps serving its certificate.
    renewal = octopus(box, "certificate", "renew", "--force", check=False)
    assert renewal.returncode != 0
    assert len(renewal.stderr.strip().splitlines()) == 1, renewal.stderr
    incidents = [json.loads(line) for line in box.read_file(
        "/var/log/barracuda/incidents.log").splitlines()]
    assert any(i["check"] == "certificate renewal" for i in incidents), incidents
    assert served(box, ONE)["serial"] == current
    assert verified(box, ONE) == (0, f"site={ONE}")
