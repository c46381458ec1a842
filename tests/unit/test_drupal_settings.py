"""settings.php and the credentials file for Drupal 7 and Drupal 8+: the PHP text, `php -l`,
and (when php is installed) what Drupal would see once PHP has run the file."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from installer.drupal import detect, settings
from installer.drupal.settings import DatabaseCredentials, RedisCredentials, SiteSettings
from installer.errors import UsageError
from tests.unit.test_drupal_detect import d7_tree, d11_project

PHP = shutil.which("php")
needs_php = pytest.mark.skipif(PHP is None, reason="php is not installed here")
SALT = "s" * 40 + "'\\"  # quotes and backslashes must survive
DB = DatabaseCredentials("o1_one", "o1_one", "p'a\\ss$word\"", host="127.0.0.1", port=3307)
REDIS = RedisCredentials("o1", "r3dis'pw")


def site_for(platform: detect.Platform, tmp_path: Path, **changes: Any) -> SiteSettings:
    site = SiteSettings(platform=platform, domain="one.example.org",
                        names=("www.one.example.org",), dev_names=("dev.one.example.org",),
                        credentials_file=tmp_path / "secrets" / "one.example.org.php",
                        hash_salt=SALT, redis_prefix="o1:one.example.org")
    return replace(site, **changes)


@pytest.fixture
def d7(tmp_path: Path) -> detect.Platform:
    return detect.detect(d7_tree(tmp_path / "d7"))


@pytest.fixture
def d11(tmp_path: Path) -> detect.Platform:
    root = d11_project(tmp_path / "d11")
    (root / "web" / "core" / "modules" / "mysql" / "src" / "Driver" / "Database" / "mysql").mkdir(
        parents=True)
    return detect.detect(root)


def lint(text: str, tmp_path: Path) -> None:
    if PHP is None:
        return
    path = tmp_path / "lint.php"
    path.write_text(text)
    proc = subprocess.run([PHP, "-l", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def run_settings(site: SiteSettings, *, server: dict[str, str] | None = None,
                 get: dict[str, str] | None = None,
                 credentials: str | None = None) -> dict[str, Any]:
    """Run the rendered settings.php in PHP and return what it set."""
    assert PHP is not None
    site_dir = site.platform.site_dir(site.domain)
    site_dir.mkdir(parents=True, exist_ok=True)
    (site_dir / "settings.php").write_text(settings.settings_php(site))
    site.credentials_file.parent.mkdir(parents=True, exist_ok=True)
    if credentials is not None:
        site.credentials_file.write_text(credentials)
    harness = site_dir.parent / "harness.php"
    harness.write_text(
        "<?php\n"
        "$_SERVER = array_merge($_SERVER, json_decode($argv[1], TRUE));\n"
        "$_GET = json_decode($argv[2], TRUE);\n"
        "$app_root = " + settings.php_string(site.platform.docroot) + ";\n"
        "$site_path = 'sites/" + site.domain + "';\n"
        "$databases = []; $settings = []; $conf = []; $config = [];\n"
        "include $app_root . '/' . $site_path . '/settings.php';\n"
        "echo json_encode(['databases' => $databases, 'settings' => $settings, 'conf' => $conf,"
        " 'config' => $config, 'salt' => $drupal_hash_salt ?? null,"
        " 'display_errors' => ini_get('display_errors'), 'server_pass' =>"
        " $_SERVER['db_passwd'] ?? null, 'https' => $_SERVER['HTTPS'] ?? null,"
        " 'local' => $local ?? null]);\n")
    argv = [PHP, str(harness), json.dumps(server or {}), json.dumps(get or {})]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


# --------------------------------------------------------------------------- text


def test_d7_text(d7: detect.Platform, tmp_path: Path) -> None:
    text = settings.settings_php(site_for(d7, tmp_path))
    assert text.startswith("<?php\n")
    assert "Managed by barracuda" in text
    assert f"@include '{tmp_path}/secrets/one.example.org.php';" in text
    assert "$drupal_hash_salt = '" + "s" * 40 + "\\'\\\\';" in text
    assert "$conf['file_public_path'] = 'sites/one.example.org/files';" in text
    assert "$conf['file_private_path'] = 'sites/one.example.org/private/files';" in text
    assert "$conf['file_temporary_path'] = 'sites/one.example.org/private/temp';" in text
    assert "$barracuda_dev_names = ['dev.one.example.org'];" in text
    assert "trusted_host_patterns" not in text  # Drupal 7 has none
    assert "redis" not in text.lower()  # no module, no wiring
    assert "reverse_proxy" not in text
    assert "local.settings.php" in text
    assert DB.password not in text
    lint(text, tmp_path)


def test_d11_text(d11: detect.Platform, tmp_path: Path) -> None:
    text = settings.settings_php(site_for(d11, tmp_path, redis=False))
    assert "$settings['hash_salt'] = '" in text
    assert ("$settings['trusted_host_patterns'] = [\n  '^one\\\\.example\\\\.org$',\n"
            "  '^www\\\\.one\\\\.example\\\\.org$',\n  '^dev\\\\.one\\\\.example\\\\.org$',\n];"
            in text)
    assert "$settings['config_sync_directory'] = 'sites/one.example.org/private/config/sync';" \
        in text
    assert "$settings['file_temp_path'] = 'sites/one.example.org/private/temp';" in text
    assert "'namespace' => 'Drupal\\\\mysql\\\\Driver\\\\Database\\\\mysql'," in text
    assert "'isolation_level' => 'READ COMMITTED'," in text
    assert "$config['system.logging']['error_level']" in text
    assert "redis" not in text.lower()
    lint(text, tmp_path)


def test_redis_wired_only_with_the_module(d7: detect.Platform, d11: detect.Platform,
                                          tmp_path: Path) -> None:
    text = settings.settings_php(site_for(d11, tmp_path))
    assert "$settings['cache']['default'] = 'cache.backend.redis';" in text
    assert "$settings['cache_prefix'] = 'o1:one.example.org';" in text
    assert "modules/contrib/redis/redis.services.yml" in text
    assert "isset($_GET['noredis'])" in text
    lint(text, tmp_path)
    module = d7.docroot / "sites" / "all" / "modules" / "redis"
    text7 = settings.settings_php(site_for(replace(d7, redis_module=module), tmp_path))
    assert "$conf['cache_backends'][] = 'sites/all/modules/redis/redis.autoload.inc';" in text7
    assert "$conf['cache_class_cache_form'] = 'DrupalDatabaseCache';" in text7
    lint(text7, tmp_path)
    with pytest.raises(UsageError, match="redis prefix"):
        settings.settings_php(site_for(d11, tmp_path, redis_prefix="bad prefix'"))


def test_proxy_addresses(d11: detect.Platform, tmp_path: Path) -> None:
    text = settings.settings_php(site_for(d11, tmp_path, proxy_addresses=("10.0.0.2",)))
    assert "$settings['reverse_proxy'] = TRUE;" in text
    assert "$barracuda_proxies = ['10.0.0.2'];" in text


def test_refusals(d7: detect.Platform, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="outside the platform tree"):
        settings.settings_php(site_for(d7, tmp_path, credentials_file=d7.root / "creds.php"))
    with pytest.raises(UsageError, match="absolute"):
        settings.settings_php(site_for(d7, tmp_path, credentials_file=Path("creds.php")))
    with pytest.raises(UsageError, match="hash salt"):
        settings.settings_php(site_for(d7, tmp_path, hash_salt="short"))
    with pytest.raises(UsageError, match="not a valid host name"):
        settings.settings_php(site_for(d7, tmp_path, names=("evil'];phpinfo();//",)))
    plain = replace(d7, core=detect.PHP)
    with pytest.raises(UsageError, match="not Drupal"):
        settings.settings_php(site_for(plain, tmp_path))


def test_salt_and_helpers() -> None:
    salts = {settings.new_hash_salt() for _ in range(20)}
    assert len(salts) == 20 and all(len(s) == 74 and "=" not in s for s in salts)
    assert settings.php_string("a'b\\c") == "'a\\'b\\\\c'"
    assert settings.host_pattern("A-b.Example.org") == "^a\\-b\\.example\\.org$"
    with pytest.raises(UsageError):
        settings.php_string("nul\0")


def test_credentials_text(tmp_path: Path) -> None:
    text = settings.credentials_php(DB, REDIS, domain="one.example.org")
    assert "Managed by barracuda" in text
    assert "'password' => 'p\\'a\\\\ss$word\"'," in text
    assert "'username' => 'o1'," in text
    assert "'redis'" not in settings.credentials_php(DB)
    lint(text, tmp_path)


# --------------------------------------------------------------------------- run by PHP


@needs_php
@pytest.mark.parametrize("core", ["d7", "d11"])
def test_php_sees_the_credentials_and_paths(core: str, request: pytest.FixtureRequest,
                                            tmp_path: Path) -> None:
    platform: detect.Platform = request.getfixturevalue(core)
    site = site_for(platform, tmp_path)
    out = run_settings(site, credentials=settings.credentials_php(DB, REDIS))
    db = out["databases"]["default"]["default"]
    assert (db["database"], db["username"], db["password"], db["host"], db["port"]) == (
        "o1_one", "o1_one", DB.password, "127.0.0.1", 3307)
    assert db["driver"] == "mysql"
    if core == "d7":
        assert out["salt"] == SALT
        assert out["conf"]["file_private_path"] == "sites/one.example.org/private/files"
        assert out["conf"]["cron_safe_threshold"] == 0
        assert out["conf"]["error_level"] == 0
    else:
        assert out["settings"]["hash_salt"] == SALT
        assert out["settings"]["trusted_host_patterns"][0] == "^one\\.example\\.org$"
        assert out["config"]["system.logging"]["error_level"] == "hide"
    assert out["display_errors"] in ("0", "")


@needs_php
def test_vhost_values_are_the_fallback_and_are_unset(d11: detect.Platform,
                                                     tmp_path: Path) -> None:
    site = site_for(d11, tmp_path)
    server = {"db_name": "vdb", "db_user": "vuser", "db_passwd": "vpass", "db_host": "h",
              "db_port": "3306"}
    out = run_settings(site, server=server)  # no credentials file
    db = out["databases"]["default"]["default"]
    assert (db["database"], db["password"], db["port"]) == ("vdb", "vpass", 3306)
    assert out["server_pass"] is None


@needs_php
def test_no_credentials_at_all_refuses(d7: detect.Platform, tmp_path: Path) -> None:
    site = site_for(d7, tmp_path)
    site_dir = d7.site_dir(site.domain)
    site_dir.mkdir(parents=True)
    (site_dir / "settings.php").write_text(settings.settings_php(site))
    assert PHP is not None
    proc = subprocess.run([PHP, str(site_dir / "settings.php")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 1
    assert "cannot read the site's credentials" in proc.stderr


@needs_php
def test_local_settings_included_last(d11: detect.Platform, tmp_path: Path) -> None:
    site = site_for(d11, tmp_path)
    site_dir = d11.site_dir(site.domain)
    site_dir.mkdir(parents=True)
    (site_dir / "local.settings.php").write_text(
        "<?php\n$settings['hash_salt'] = 'mine';\n$local = TRUE;\n")
    out = run_settings(site, credentials=settings.credentials_php(DB))
    assert out["local"] is True and out["settings"]["hash_salt"] == "mine"


@needs_php
def test_redis_falls_back_when_it_does_not_answer(d7: detect.Platform, tmp_path: Path) -> None:
    module = d7.docroot / "sites" / "all" / "modules" / "redis"
    site = site_for(replace(d7, redis_module=module), tmp_path)
    dead = RedisCredentials("o1", "pw", host="127.0.0.1", port=1)
    out = run_settings(site, credentials=settings.credentials_php(DB, dead))
    assert "cache_backends" not in out["conf"]
    assert "cache_default_class" not in out["conf"]
