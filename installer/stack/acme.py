"""Let's Encrypt (any ACME directory) certificates through Debian's certbot in webroot mode.

Every vhost, the master one included, answers /.well-known/acme-challenge/ from one
directory only root writes (paths.yml acme_webroot), so a site's names are validated before
its own vhost exists and no tenant can answer a challenge for another's name. A certificate
is issued into certbot's lineage named after the site's domain; the vhost points at it only
once it exists (the resource runs before the Nginx component). certbot renews on its own
schedule (the certbot.timer of Debian's package with systemd, a cron entry without), through
`octopus certificate renew`, which records a failure as an incident; certbot's deploy hook
reloads Nginx only after `nginx -t` passed."""

from __future__ import annotations

import errno
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from installer.data import load_profile
from installer.errors import CommandError, ConfigError
from installer.incidents import record_incident
from installer.resources.base import Change, Context, Resource
from installer.resources.cron import CronJob, cron_file
from installer.resources.files import Directory, File
from installer.resources.system import Command, Packages, Service
from installer.runner import Runner
from installer.services import manager_for
from installer.target import Target

DROPIN = ("[Service]\n# barracuda: renewals run through octopus, which records a failure as an "
          "incident.\nExecStart=\nExecStart=/usr/bin/env PATH={path} {command}\n")
HOOK = "#!/bin/sh\n# barracuda: reload Nginx after a renewal, only if nginx -t passes.\n" \
       "PATH={path}\nexport PATH\nexec {command}\n"
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def profile() -> dict[str, Any]:
    return load_profile("acme")


def directory_url(value: str) -> str:
    """_LETSENCRYPT_URL: a word of profiles/acme.yml (production, staging) or the URL."""
    return str(profile()["directories"].get(value, value))


def lineage(letsencrypt_dir: str, name: str) -> tuple[str, str]:
    """(certificate chain, key) of certbot's lineage `name`."""
    return (f"{letsencrypt_dir}/live/{name}/fullchain.pem",
            f"{letsencrypt_dir}/live/{name}/privkey.pem")


def is_local(address: str) -> bool:
    """True when `address` belongs to this machine (a socket can be bound to it)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address.split("%")[0], 0))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return False
            raise
    return True


def check_resolves(names: tuple[str, ...]) -> None:
    """Every name resolves to this machine only, or one ConfigError line says which does not
    (asked before the ACME server, which would fail the challenge anyway)."""
    for name in names:
        try:
            found = {str(info[4][0]) for info in socket.getaddrinfo(name, 80,
                                                                    type=socket.SOCK_STREAM)}
        except OSError as exc:
            raise ConfigError(f"certificate for {name}: the name does not resolve ({exc}); "
                              "point its DNS at this machine first") from None
        elsewhere = sorted(a for a in found if not is_local(a))
        if elsewhere:
            raise ConfigError(f"certificate for {name}: it resolves to {' '.join(elsewhere)}, "
                              "not to this machine; point its DNS here first")


def acme_error(output: str) -> str:
    """The line of certbot's output that says why: the ACME server's `Detail:`, else the
    last line that is not advice."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Detail:"):
            return line.removeprefix("Detail:").strip()
    skip = ("Ask for help", "See the logfile", "Saving debug log", "Hint:", "Some challenges")
    useful = [line for line in lines if not line.startswith(skip)]
    return useful[-1] if useful else "certbot failed without a message"


def _openssl(runner: Runner, path: str, *args: str) -> str:
    return runner.run(["openssl", "x509", "-noout", "-in", path, *args], timeout=30).stdout


def certificate_names(runner: Runner, path: str) -> set[str]:
    text = _openssl(runner, path, "-ext", "subjectAltName")
    return set(re.findall(r"DNS:([^,\s]+)", text))


def certificate_info(runner: Runner, path: str) -> dict[str, str]:
    """The issuer's common name (or whole name) and the expiry (ISO 8601, UTC) of `path`."""
    text = _openssl(runner, path, "-issuer", "-enddate", "-nameopt", "RFC2253")
    issuer = re.search(r"^issuer=(.*)$", text, re.M)
    ends = re.search(r"^notAfter=(.*)$", text, re.M)
    name = issuer.group(1).strip() if issuer else ""
    common = re.search(r"CN=((?:\\,|[^,])+)", name)
    expires = ""
    if ends:
        stamp = datetime.strptime(ends.group(1).strip(), "%b %d %H:%M:%S %Y %Z")
        expires = stamp.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"issuer": common.group(1) if common else name, "expires": expires}


def _renewal_server(target: Target, letsencrypt_dir: str, name: str) -> str:
    conf = target.path(f"{letsencrypt_dir}/renewal/{name}.conf")
    if not conf.is_file():
        return ""
    found = re.search(r"^server\s*=\s*(\S+)", conf.read_text(encoding="utf-8"), re.M)
    return found.group(1) if found else ""


@dataclass
class AcmeCertificate(Resource):
    """certbot's lineage `name` holds a certificate for exactly `names`, from `server`."""

    changes_environment = True

    name: str
    names: tuple[str, ...]
    server: str
    email: str
    webroot: str
    letsencrypt_dir: str
    ca_bundle: str = ""

    @property
    def id(self) -> str:
        return f"acme:{self.name}"

    @property
    def ok_reason(self) -> str:
        return f"issued for {' '.join(self.names)}"

    def _missing(self, ctx: Context) -> str:
        """Why the lineage must be issued again, or ""."""
        cert, key = lineage(self.letsencrypt_dir, self.name)
        if not (ctx.target.path(cert).is_file() and ctx.target.path(key).is_file()):
            return "no certificate yet"
        server = _renewal_server(ctx.target, self.letsencrypt_dir, self.name)
        if server != self.server:
            return f"issued by {server or 'an unknown directory'}, wanted {self.server}"
        names = certificate_names(ctx.runner, str(ctx.target.path(cert)))
        if names != set(self.names):
            return f"names {' '.join(sorted(names))}, wanted {' '.join(self.names)}"
        return ""

    def check(self, ctx: Context) -> list[Change]:
        if not ctx.target.live:
            return [self.live_change(ctx, "issue", f"a certificate for {' '.join(self.names)}")]
        why = self._missing(ctx)
        if why:  # refused at planning, before anything changes
            check_resolves(self.names)
        return [self.change("issue", f"{why}: ask {self.server}")] if why else []

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        check_resolves(self.names)
        cert, _ = lineage(self.letsencrypt_dir, self.name)
        existed = ctx.target.path(cert).is_file()
        argv = ["certbot", "certonly", "--non-interactive", "--agree-tos", "--webroot",
                "-w", self.webroot, "--cert-name", self.name, "--server", self.server,
                "--config-dir", self.letsencrypt_dir, "--expand"]
        argv += ["--email", self.email, "--no-eff-email"] if self.email \
            else ["--register-unsafely-without-email"]
        if existed:
            argv.append("--force-renewal")  # other names or another directory: a new one
        for host in self.names:
            argv += ["-d", host]
        try:
            ctx.runner.run(argv, timeout=float(profile()["timeout_s"]),
                           env=certbot_env(self.ca_bundle))
        except CommandError as exc:
            raise ConfigError(f"certificate for {self.names[0]} not issued by {self.server}: "
                              f"{acme_error(exc.output)}") from None
        if not existed:
            ctx.journal.did(f"issued certificate {self.name}", lambda: ctx.runner.run(
                ["certbot", "delete", "--non-interactive", "--cert-name", self.name,
                 "--config-dir", self.letsencrypt_dir], check=False, timeout=120))
        else:
            ctx.journal.did(f"issued certificate {self.name} again", None)


def renewal(paths: dict[str, str], *, systemd: bool) -> list[Resource]:
    """certbot itself, the challenge directory, the deploy hook and the schedule: with
    systemd the package's timer runs certbot.service (its command replaced by a drop-in;
    the timer started, as packages install with their services held back), without systemd
    a cron entry (the package's own cron line runs certbot directly, ours records a failure
    as an incident)."""
    spec = profile()
    command = str(spec["renew_command"])
    certbot = Packages("acme", list(spec["packages"]))
    after = (certbot.id,)
    resources: list[Resource] = [
        certbot,
        Directory(paths["acme_webroot"], mode=0o755),
        File(str(spec["deploy_hook"]), mode=0o755, requires=after, comment="",
             content=HOOK.format(path=SEARCH_PATH, command=spec["deploy_command"])),
    ]
    if not systemd:
        return [*resources, cron_file(str(spec["cron_name"]), [CronJob(
            "certificate renewal", str(spec["cron_schedule"]), command)])]
    dropin = File(str(spec["systemd_dropin"]), requires=after, comment="#",
                  content=DROPIN.format(path=SEARCH_PATH, command=command))
    reloaded = Command("certbot-daemon-reload", ["systemctl", "daemon-reload"],
                       done=_dropin_loaded(command), why="systemd has not loaded the drop-in",
                       requires=(dropin.id,))
    return [*resources, dropin, reloaded,
            Service(str(spec["systemd_timer"]), requires=(reloaded.id,))]


def _dropin_loaded(command: str) -> Callable[[Context], bool]:
    def done(ctx: Context) -> bool:
        result = ctx.runner.run(["systemctl", "show", "--property=ExecStart", "--value",
                                 "certbot.service"], check=False, timeout=60)
        return result.ok and command in result.stdout

    return done


def lineages(target: Target, letsencrypt_dir: str) -> list[str]:
    live = target.path(f"{letsencrypt_dir}/live")
    if not live.is_dir():
        return []
    return sorted(p.name for p in live.iterdir() if (p / "fullchain.pem").is_file())


def expiring(runner: Runner, target: Target, letsencrypt_dir: str,
             now: float | None = None) -> list[tuple[str, str]]:
    """(lineage, expiry) of every certificate that expires within alert_days."""
    limit = (now or time.time()) + int(profile()["alert_days"]) * 86400
    found = []
    for name in lineages(target, letsencrypt_dir):
        cert, _ = lineage(letsencrypt_dir, name)
        expires = certificate_info(runner, str(target.path(cert)))["expires"]
        when = datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if when.timestamp() < limit:
            found.append((name, expires))
    return found


def certbot_env(ca_bundle: str) -> dict[str, str]:
    """certbot trusts a private ACME server's CA through requests' own variable."""
    return {"REQUESTS_CA_BUNDLE": ca_bundle} if ca_bundle else {}


def renew(runner: Runner, target: Target, letsencrypt_dir: str, *, force: bool = False,
          ca_bundle: str = "") -> str:
    """certbot renew (the deploy hook reloads Nginx); a failure is an incident and the
    certificates in place keep serving. Certificates close to expiry are incidents too."""
    argv = ["certbot", "renew", "--non-interactive", "--no-random-sleep-on-renew",
            "--config-dir", letsencrypt_dir]
    if force:
        argv.append("--force-renewal")
    root = target.path("/")
    result = runner.run(argv, check=False, timeout=float(profile()["timeout_s"]) * 4,
                        env=certbot_env(ca_bundle))
    for name, expires in expiring(runner, target, letsencrypt_dir):
        record_incident("certificate expiry", f"{name} expires {expires}",
                        "alert", "renew it or fix what stops its renewal", root=root)
    if not result.ok:
        why = acme_error(result.output)
        record_incident("certificate renewal", why, "kept the certificates in place",
                        "failed", root=root)
        raise ConfigError(f"certificate renewal failed (the current certificates keep "
                          f"serving): {why}")
    return "certificates renewed" if force else "certificates checked (renewed when due)"


def deployed(runner: Runner, target: Target, init_system: str, service: str) -> str:
    """certbot's deploy hook: reload Nginx only when its configuration passes nginx -t."""
    test = runner.run(["nginx", "-t"], check=False, timeout=60)
    if not test.ok:
        detail = (test.output.strip().splitlines() or ["no output"])[0]
        record_incident("certificate deploy", f"nginx -t failed: {detail}",
                        "Nginx not reloaded (it keeps the previous certificates)", "failed",
                        root=target.path("/"))
        raise ConfigError(f"nginx -t failed, Nginx not reloaded: {detail}")
    manager = manager_for(init_system, runner, target)
    if manager is not None:
        manager.reload(service)
    return f"{service} reloaded"
