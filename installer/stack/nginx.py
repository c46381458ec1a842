"""Nginx with BOA's include tree:

/etc/nginx/nginx.conf -> conf.d/barracuda.conf -> /var/aegir/config/server_master/nginx.conf
-> server_master/nginx/{pre.d,platform.d,vhost.d,post.d}/*.conf, in that order."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from installer.data import load_profile
from installer.plan import Component, Validator
from installer.resources.base import Change, Context, Resource, reload
from installer.resources.files import Absent, Directory, File
from installer.resources.system import Service
from installer.stack.context import StackContext

INCLUDE_DIRS = ("pre.d", "platform.d", "vhost.d", "post.d")
INCLUDES = "includes"  # server_master/nginx/includes: read by the site vhosts, not globbed
SITE_INCLUDES = ("filter", "shield")


def site_includes(paths: dict[str, str]) -> str:
    """The directory of the shared includes every site vhost reads."""
    return f"{paths['server_master']}/nginx/{INCLUDES}"
HEALTH_URL = "http://127.0.0.1/health"


def live_tree_valid(ctx: Context) -> str | None:
    """Preflight: an installed Nginx whose live tree fails `nginx -t` stops the run before
    any change (an operator's broken include is theirs to fix, and we must not reload it)."""
    if "nginx" not in ctx.facts.packages() or not ctx.target.path("/etc/nginx/nginx.conf").exists():
        return None
    result = ctx.runner.run(["nginx", "-t"], check=False, timeout=60)
    if result.ok:
        return None
    errors = [line for line in result.output.splitlines() if "[emerg]" in line or "failed" in line]
    detail = (errors or result.output.splitlines() or ["no output"])[0]
    return f"the live Nginx configuration fails nginx -t, nothing was changed: {detail}"


def health_ok(ctx: Context, attempts: int = 30) -> str | None:
    """GET /health through Nginx until it reports every part OK (a reload is asynchronous)."""
    import requests  # deferred: ~0.3 s of imports that only a reload needs

    problem = "no answer"
    for _ in range(attempts):
        try:
            response = requests.get(HEALTH_URL, timeout=3)
            report: dict[str, Any] = json.loads(response.text)
            if response.status_code == 200 and report.get("status") == "ok":
                return None
            problem = f"HTTP {response.status_code}: {response.text.strip()[:200]}"
        except (requests.RequestException, ValueError) as exc:
            problem = str(exc)
        time.sleep(0.5)
    return f"{HEALTH_URL}: {problem}"


@dataclass
class SelfSignedCertificate(Resource):
    """A self-signed certificate for `*.NAME` and NAME, made once and kept (key 0600)."""

    changes_environment = True

    cert: str
    key: str
    common_name: str
    days: int
    bits: int

    @property
    def id(self) -> str:
        return f"certificate:{self.cert}"

    @property
    def ok_reason(self) -> str:
        return "present (kept)"

    def check(self, ctx: Context) -> list[Change]:
        if ctx.facts.file(self.cert).exists and ctx.facts.file(self.key).exists:
            return []
        return [self.live_change(
            ctx, "create", f"missing: a self-signed *.{self.common_name} certificate")]

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        name = self.common_name
        ctx.runner.run([
            "openssl", "req", "-x509", "-newkey", f"rsa:{self.bits}", "-sha256", "-nodes",
            "-days", str(self.days), "-subj", f"/CN=*.{name}",
            "-addext", f"subjectAltName=DNS:*.{name},DNS:{name}",
            "-keyout", self.key, "-out", self.cert,
        ], timeout=120)
        os.chmod(self.key, 0o600)


def wildcard_certificate(paths: dict[str, str]) -> SelfSignedCertificate:
    spec = load_profile("base")["wildcard_certificate"]
    return SelfSignedCertificate(paths["ssl_wildcard_cert"], paths["ssl_wildcard_key"],
                                 socket.getfqdn() or "localhost", int(spec["days"]),
                                 int(spec["bits"]), requires=("packages:stack",))


def component(stack: StackContext) -> Component:
    paths = stack.paths
    service = stack.release.service("nginx")
    master = paths["server_master"]
    notify = (reload(service),)
    after = ("packages:stack",)
    context = {**stack.template_context(), "nginx": load_profile("nginx"),
               "http2": stack.release.nginx_http2}
    health_dir = paths["health_secret"].rsplit("/", 1)[0]
    resources: list[Resource] = [
        Directory(paths["aegir_config"], mode=0o755),
        Directory(master, mode=0o755),
        Directory(f"{master}/nginx", mode=0o755),
        *(Directory(f"{master}/nginx/{d}", mode=0o755) for d in INCLUDE_DIRS),
        Directory(paths["health_root"], mode=0o755),
        # The logs name every visitor, URL and query string of every site: closed to the
        # tenants (Debian's logrotate recreates them 0640 www-data:adm; the workers reopen
        # them by name after a rotation, so www-data keeps the directory).
        Directory(paths["nginx_log_dir"], mode=0o750, owner="www-data", fgroup="adm",
                  requires=after),
        File(f"{paths['nginx_dir']}/nginx.conf", template="nginx/nginx.conf.j2",
             context=context, notify=notify, requires=after),
        File(f"{paths['nginx_dir']}/conf.d/barracuda.conf", template="nginx/barracuda.conf.j2",
             context=context, notify=notify, requires=after),
        # The Speed Booster's cache, written by the workers only.
        Directory(paths["speed_cache"], mode=0o700, owner="www-data", fgroup="www-data",
                  requires=after),
        # Shared includes every site vhost reads (request filtering, the crawler shield).
        Directory(f"{master}/nginx/{INCLUDES}", mode=0o755),
        *(File(f"{master}/nginx/{INCLUDES}/{name}.conf", template=f"nginx/{name}.conf.j2",
               context=context, notify=notify) for name in SITE_INCLUDES),
        File(f"{master}/nginx.conf", template="nginx/server_master.conf.j2", context=context,
             notify=notify),
        File(f"{master}/nginx/vhost.d/000-master.conf", template="nginx/master_vhost.conf.j2",
             context=context, notify=notify),
        File(f"{paths['health_root']}/health.php", template="php/health.php.j2",
             context=context, comment="php"),
        # Redis' password for health.php, readable by the web group only (not by the
        # instances' pools, which run as other users).
        Directory(health_dir, mode=0o750, fgroup="www-data"),
        File(paths["health_secret"], content=stack.redis_password + "\n", mode=0o640,
             fgroup="www-data", comment="", secret=True, requires=(f"dir:{health_dir}",)),
        wildcard_certificate(paths),
        Absent(f"{paths['nginx_dir']}/sites-enabled/default",
               why="the distribution's default site is replaced by the master vhost",
               notify=notify),
        Service(service, requires=after),
    ]
    return Component(
        "nginx", resources,
        validators=[Validator(["nginx", "-t"], "nginx -t")],
        health=[health_ok],
        preflight=[live_tree_valid],
    )
