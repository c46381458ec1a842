"""Nginx for Drupal, without a box: the vhost each site type gets, the per-site settings, the
profile's filter and bot patterns against sample requests, and the validator message that
names the broken file and line."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from installer.apply import Applier, _first_error
from installer.checkpoint import Checkpoint
from installer.data import load_profile
from installer.errors import ApplyError, ConfigError, UsageError
from installer.facts import Facts
from installer.octopus.components import InstanceState, build_instance
from installer.octopus.model import PlatformRecord, SiteRecord, platform_kind
from installer.octopus.sites.common import SiteSettings
from installer.plan import Component
from installer.resources.base import Context, reload
from installer.resources.files import File
from installer.runner import SubprocessRunner
from installer.stack import nginx as nginx_stack
from installer.target import Target
from installer.templates import render
from tests.unit.test_octopus import instance_state, two_php_stack
from tests.unit.test_resources import FakeServices, RecordingRunner, make_ctx

NGINX = load_profile("nginx")
SITE = SiteRecord("a.example.org", "web", "o1_a", "o1_a", "pw",
                  aliases=("www.a.example.org", "dev.a.example.org", "a.dev.example.org"))


def vhost(state: InstanceState, domain: str = "a.example.org") -> str:
    components = build_instance(state, two_php_stack(), [])
    nginx = next(c for c in components if c.name == "o1-nginx")
    file = next(r for r in nginx.resources
                if getattr(r, "path", "").endswith(f"vhost.d/{domain}.conf"))
    return file.wanted.decode()  # type: ignore[attr-defined]


def state_with(site: SiteRecord, kind: str = "drupal",
               detected: dict[str, str] | None = None) -> InstanceState:
    state = instance_state("8.2", [site])
    return replace(state, platforms=[PlatformRecord("web", "/src", kind=kind)],
                   detected=detected or {})


def locations(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("location")]


def script_locations(text: str) -> list[str]:
    r"""The scripts that run: `location ~ ^/update\.php(/|$) {` -> /update.php."""
    return [re.sub(r"\\(.)", r"\1", m) for m in re.findall(
        r"location ~ \^(\S+)\(/\|\$\) \{\n        limit_conn", text)]


def test_drupal_vhost_runs_only_the_front_controller_and_core_scripts() -> None:
    text = vhost(state_with(SITE))
    drupal = NGINX["types"]["drupal"]
    assert [loc for loc in locations(text) if loc.startswith("location = ")] == [
        "location = /index.php {"]
    assert script_locations(text) == drupal["scripts"]
    assert "location ~ ^/core/install\\.php(/|$) {\n        return 403;" in text
    assert locations(text)[-1].startswith(r"location ~* \.(php|")  # the catch-all 404
    assert "try_files $uri /index.php?$query_string;" in text
    assert "$uri/" not in text  # a directory is a route of Drupal's, not a listing
    assert r"rewrite ^/index\.php/(.*)$ /$1 permanent;" in text
    assert f"fastcgi_cache_valid 200 {NGINX['speed_booster']['ttl_s']}s;" in text
    assert "Strict-Transport-Security" not in text and "ssl_stapling" not in text
    assert f"limit_conn limreq {NGINX['limit_conn']['site']};" in text
    assert text.count(f"limit_conn limreq {NGINX['limit_conn']['admin']};") == len(
        drupal["scripts"])
    assert "access_log /var/log/nginx/a.example.org.access.log barracuda;" in text
    assert "error_log /var/log/nginx/a.example.org.error.log;" in text
    assert "disable_symlinks if_not_owner from=$document_root;" in text
    # Only aliases that look like dev aliases bypass the cache and show PHP errors.
    assert 'if ($host = "dev.a.example.org")' in text
    assert 'if ($host = "a.dev.example.org")' in text
    assert 'if ($host = "www.a.example.org")' not in text
    assert f'set $speed_php_value "{NGINX["php_errors"]["main"]}";' in text
    assert f'set $speed_php_value "{NGINX["php_errors"]["dev"]}";' in text
    assert text.count("fastcgi_param PHP_VALUE $speed_php_value;") == 1 + len(drupal["scripts"])
    # The files directory denies PHP before anything else can match it, and a missing file
    # there (an image style derivative) goes to Drupal.
    files = text.index("location ~ ^/sites/[^/]+/files/")
    assert files < text.index("location = /index.php")
    assert "include /var/aegir/config/server_master/nginx/includes/shield.conf;" in text


def regex_locations(text: str) -> list[tuple[str, str, int]]:
    """(regex, what it does, re flags) of the server's own regex locations, in order."""
    found = []
    for m in re.finditer(r"(?m)^    location (~\*?) (\S+) \{\n(.*?)\n    \}", text, re.S):
        body = m.group(3).strip()
        action = "403" if body.startswith("return 403") else (
            "404" if body.startswith("return 404") else "other")
        found.append((m.group(2), action, re.I if m.group(1) == "~*" else 0))
    return found


def first_match(text: str, uri: str) -> str:
    """What Nginx does with `uri` when no exact or ^~ location takes it: the first regex
    location that matches (403, 404, or `other REGEX`: served, routed or run), else `/`."""
    for regex, action, flags in regex_locations(text):
        if re.search(regex.replace("\\d", "[0-9]"), uri, flags):
            return f"other {regex}" if action == "other" else action
    return "/"


@pytest.mark.parametrize("kind", ["drupal", "drupal7", "php", "plain"])
@pytest.mark.parametrize("uri", [
    "/.env", "/.git/config", "/sites/all/modules/x/.htaccess", "/modules/node/node.info",
    "/modules/node/node.module", "/includes/bootstrap.inc", "/modules/node/node.install",
    "/profiles/standard/standard.profile", "/themes/engines/phptemplate/phptemplate.engine",
    "/themes/bartik/template.theme", "/core/core.services.yml", "/core/x.info.yml",
    "/core/themes/x/page.html.twig", "/sites/all/translations/fr.po", "/dump.sql",
    "/modules/simpletest/tests/x.test", "/composer.json", "/composer.lock", "/CHANGELOG.txt",
    "/core/CHANGELOG.txt", "/INSTALL.mysql.txt", "/UPGRADE.txt", "/MAINTAINERS.txt",
    "/LICENSE.txt", "/README.txt", "/COPYRIGHT.txt", "/core/USAGE.txt",
    "/sites/all/modules/views/README.txt", "/sites/default/settings.php",
    "/sites/default/local.settings.php", "/sites/default/settings.local.php",
    "/vendor/autoload.php", "/vendor/bin/drush", "/web.config", "/x.sql.gz",
    "/sites/a.example.org/private/secret.txt", "/sites/default/files/backup.sql",
    "/sites/default/files/.htaccess",
])
def test_source_data_and_core_text_files_are_denied(kind: str, uri: str) -> None:
    assert first_match(vhost(state_with(SITE, kind)), uri) == "403", (kind, uri)


@pytest.mark.parametrize("kind", ["drupal", "drupal7"])
@pytest.mark.parametrize("uri", [
    "/rss.xml", "/sitemap.xml", "/node/1.pdf", "/system/files/secret.txt",
    "/system/files/README.txt", "/sites/default/files/styles/thumbnail/public/a.jpg",
    "/sites/default/files/README.txt", "/core/assets/vendor/jquery/jquery.min.js",
    "/robots.txt", "/misc/drupal.js",
])
def test_application_paths_reach_a_file_or_the_front_controller(kind: str, uri: str) -> None:
    text = vhost(state_with(SITE, kind))
    front = NGINX["types"][kind]["front"]
    match = first_match(text, uri)
    assert match.startswith("other"), (uri, match)
    regex = match.split(" ", 1)[1]
    body = re.search(rf"location ~\*? {re.escape(regex)} \{{(.*?)\n    \}}", text, re.S)
    assert body and f"try_files $uri {front};" in body.group(1), (uri, regex)


@pytest.mark.parametrize("kind", ["drupal", "drupal7", "php"])
def test_well_known_files_are_served_but_not_hidden_ones_nor_php(kind: str) -> None:
    text = vhost(state_with(SITE, kind))
    block = text[text.index("location ^~ /.well-known/ {"):]
    block = block[:block.index("try_files")]  # its nested locations only
    nested = [(m.group(1), m.group(2)) for m in re.finditer(
        r"location (~\*?) (\S+) \{\n\s+return (\d+);", block)]
    assert len(nested) == 2

    def refused(uri: str) -> bool:
        return any(re.search(rx.replace("\\d", "[0-9]"), uri, re.I if op == "~*" else 0)
                   for op, rx in nested)
    assert not refused("/.well-known/acme-challenge/tOkEn-123")
    assert not refused("/.well-known/security.txt")
    assert refused("/.well-known/.htaccess") and refused("/.well-known/a/.git/config")
    assert refused("/.well-known/x.php")


def test_drupal7_and_php_vhosts() -> None:
    d7 = vhost(state_with(SITE, "drupal7"))
    assert "try_files $uri /index.php?q=$uri&$args;" in d7
    assert "rewrite ^/index" not in d7
    assert script_locations(d7) == ["/update.php", "/authorize.php", "/cron.php", "/xmlrpc.php"]
    assert "location ~ ^/install\\.php(/|$) {\n        return 403;" in d7
    assert "/core/" not in d7
    php = vhost(state_with(SITE, "php"))
    assert [loc for loc in locations(php) if loc.startswith("location = ")] == [
        "location = /index.php {"]
    assert "try_files $uri $uri/ /index.php?$query_string;" in php
    assert "location ~* [^/]\\.(php|phar|phtml|php\\d)(/|$) {" in php
    assert "try_files $fastcgi_script_name =404;" in php
    assert "fastcgi_cache " not in php  # its session cookies are unknown: no microcache
    assert "location ~* ^/wp-content/uploads/.*\\.(php" in php
    # PHP in the files directory and in upload directories: 404 before the catch-all runs it.
    assert first_match(php, "/sites/default/files/evil.php") == "other ^/sites/[^/]+/files/"
    assert first_match(php, "/wp-content/uploads/2024/evil.php") == "404"
    assert first_match(php, "/wp-login.php").startswith("other [^/]")
    # plain is the older name of php: the same vhost.
    plain = vhost(state_with(SITE, "plain"))
    assert plain.replace("(plain)", "(php)") == php


def test_installer_is_open_only_until_the_site_is_installed() -> None:
    components = build_instance(state_with(SITE, "drupal7"), two_php_stack(), [])
    nginx = next(c for c in components if c.name == "o1-nginx")
    file = next(r for r in nginx.resources if getattr(r, "path", "").endswith(".org.conf"))
    context = {**file.context, "installed": False}  # type: ignore[attr-defined]
    text = render("nginx/site_vhost.conf.j2", context)
    assert script_locations(text)[0] == "/install.php"
    assert "return 403" not in text.split("location ~ ^/install\\.php(/|$) {")[1][:80]


def test_site_type_auto_detection_and_override() -> None:
    assert "(drupal7)" in vhost(state_with(SITE, "auto", {"web": "drupal7"}))
    assert "(drupal)" in vhost(state_with(SITE, "auto"))  # tree not there yet
    assert "(plain)" in vhost(state_with(replace(SITE, kind="plain"), "drupal"))
    assert "(php)" in vhost(state_with(replace(SITE, kind="php"), "drupal"))


def test_platform_kind_from_the_tree(tmp_path: Path) -> None:
    assert platform_kind(tmp_path) == "plain"
    (tmp_path / "includes").mkdir()
    (tmp_path / "includes/bootstrap.inc").write_text("<?php\n")
    assert platform_kind(tmp_path) == "drupal7"
    (tmp_path / "core/lib").mkdir(parents=True)
    (tmp_path / "core/lib/Drupal.php").write_text("<?php\n")
    assert platform_kind(tmp_path) == "drupal"


def test_per_site_ttl_hsts_and_own_certificate() -> None:
    site = replace(SITE, cache_ttl=42, hsts=True, certificate="/etc/ssl/a.crt",
                   certificate_key="/etc/ssl/a.key")
    text = vhost(state_with(site))
    assert "fastcgi_cache_valid 200 42s;" in text
    assert "add_header Strict-Transport-Security $speed_hsts always;" in text
    assert "ssl_certificate /etc/ssl/a.crt;" in text and "ssl_stapling on;" in text


def facts(root: Path) -> Facts:
    return Facts(Target(root), SubprocessRunner())


@pytest.mark.parametrize(("settings", "error", "message"), [
    (SiteSettings(kind="wordpress"), UsageError, "--type wordpress: expected one of auto"),
    (SiteSettings(cache_ttl=-1), UsageError, "--cache-ttl -1: expected 0"),
    (SiteSettings(cache_ttl=10**7), UsageError, "--cache-ttl 10000000"),
    (SiteSettings(certificate="/a.crt"), UsageError, "together"),
    (SiteSettings(certificate="/a.crt", certificate_key=""), UsageError, "together"),
    (SiteSettings(certificate="/missing.crt", certificate_key="/missing.key"), ConfigError,
     "--certificate /missing.crt: no such file"),
])
def test_site_settings_are_checked(tmp_path: Path, settings: SiteSettings,
                                   error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        settings.applied(SITE, facts(tmp_path))


def test_site_settings_apply_and_reset(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    site = SiteSettings(kind="drupal7", hsts=True, cache_ttl=5, certificate="/c.pem",
                        certificate_key="/c.pem").applied(SITE, facts(tmp_path))
    assert (site.kind, site.hsts, site.cache_ttl, site.certificate) == ("drupal7", True, 5,
                                                                        "/c.pem")
    back = SiteSettings(kind="auto", certificate="", certificate_key="").applied(
        site, facts(tmp_path))
    assert (back.kind, back.certificate, back.hsts) == ("", "", True)


def args_denied(query: str) -> bool:
    return re.search("(" + ")|(".join(NGINX["args_deny"]) + ")", query, re.I) is not None


@pytest.mark.parametrize("query", [
    "id=1%20UNION%20SELECT%20password%20FROM%20users", "id=1+union+all+select+1",
    "q=%3Cscript%3Ealert(1)%3C/script%3E", "q=<script>", "x=%3Csvg/onload=alert(1)%3E",
    "file=../../etc/passwd", "file=..%2F..%2Fetc", "x=1;cat", "cb=javascript:alert(1)",
    "c=document.cookie", "a=system(id)", "q=DELETE%20FROM%20users", "q=drop%20table%20x",
])
def test_filter_denies_attack_shapes(query: str) -> None:
    assert args_denied(query)


@pytest.mark.parametrize("query", [
    "page=2&sort=title", "q=node/1", "search=select+a+color", "destination=admin/content",
    "utm_source=newsletter&utm_campaign=spring", "items[]=1&items[]=2", "text=a%20b%20c",
])
def test_filter_lets_ordinary_queries_through(query: str) -> None:
    assert not args_denied(query)


def test_bot_and_crawler_lists() -> None:
    bad = re.compile("|".join(NGINX["bad_bots"]), re.I)
    crawler = re.compile("|".join(NGINX["crawlers"]), re.I)
    paths = re.compile(NGINX["bot_denied_paths"])
    assert bad.search("Mozilla/5.0 (compatible; HTTrack 3.0x)")
    assert not bad.search("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    assert crawler.search("Mozilla/5.0 (compatible; Googlebot/2.1)")
    assert not crawler.search("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148")
    for path in ("/user/login", "/admin", "/node/add/page", "/node/12/edit", "/cart"):
        assert paths.search(path), path
    for path in ("/", "/node/12", "/users-guide", "/administrators"):
        assert not paths.search(path), path


def test_server_master_maps_render_from_the_profile() -> None:
    paths = {k: str(v) for k, v in load_profile("paths").items()}
    stack = two_php_stack()
    text = render("nginx/server_master.conf.j2", {**stack.template_context(), "nginx": NGINX})
    assert f"fastcgi_cache_path {paths['speed_cache']} " in text
    assert 'fastcgi_cache_key "$scheme$request_method$host$request_uri$speed_device";' in text
    for name in ("$speed_bad_args", "$speed_bad_bot", "$speed_bad_referer", "$speed_crawler",
                 "$speed_cookie_bypass", "$speed_hsts"):
        assert re.search(rf"^map \S+ {re.escape(name)} {{", text, re.M), name
    for header in NGINX["hidden_headers"]:
        assert f"fastcgi_hide_header {header};" in text
    shield = render("nginx/shield.conf.j2", {"paths": paths})
    assert f"if (-f {paths['shield_flag']})" in shield and "return 503;" in shield


def test_validator_error_names_the_file_and_line() -> None:
    output = ("nginx: [warn] the \"ssl\" directive is deprecated\n"
              "nginx: [emerg] unknown directive \"bogus\" in /etc/nginx/post.d/x.conf:3\n"
              "nginx: configuration file /etc/nginx/nginx.conf test failed\n")
    assert _first_error(output).endswith("/etc/nginx/post.d/x.conf:3")
    assert _first_error("just one line\n") == "just one line"
    assert _first_error("") == ""


def test_a_failed_probe_restores_the_files_and_reloads_again(tmp_path: Path) -> None:
    """Never down, in the engine: the probe after the reload fails -> every file back from
    the checkpoint, the reload run again on the old files, and the error says so."""

    services = FakeServices(running={"nginx"}, enabled={"nginx"})
    ctx = make_ctx(tmp_path, RecordingRunner(), services)
    vhost = tmp_path / "etc/nginx/site.conf"
    vhost.parent.mkdir(parents=True)
    vhost.write_text("old\n")
    seen: list[str] = []

    def probe(ctx: Context) -> str | None:
        seen.append(vhost.read_text())
        return "example.org: HTTP 502"

    component = Component("site-nginx", [File("/etc/nginx/site.conf", content="new\n",
                                              comment="", notify=(reload("nginx"),))],
                          health=[probe])
    with pytest.raises(ApplyError) as caught:
        Applier(ctx, Checkpoint(ctx.target, tmp_path / "cp")).run([component])
    message = str(caught.value)
    assert "site-nginx health check failed: example.org: HTTP 502" in message
    assert "Rolled back: restored /etc/nginx/site.conf" in message
    assert "then ran reload nginx" in message
    assert seen == ["new\n"] and vhost.read_text() == "old\n"
    assert services.actions == ["reload nginx", "reload nginx"]


def test_site_logs_are_closed_to_the_tenants() -> None:
    """Hole 6 of issue 12: the per-site logs name every visitor and query string."""
    resources = nginx_stack.component(two_php_stack()).resources
    logs = next(r for r in resources if r.id == "dir:/var/log/nginx")
    assert (logs.mode, logs.owner, logs.fgroup) == (  # type: ignore[attr-defined]
        0o750, "www-data", "adm")
