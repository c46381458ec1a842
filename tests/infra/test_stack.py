"""The converged stack, checked from inside the machine: services, sockets, the /health
page through Nginx, the tuned values live in each service, and the secrets' hygiene."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.stack import CONFIG, SECRETS, expected, redis, sql

MIB = 1024 * 1024


def test_services_running_and_enabled(host: Any) -> None:
    for name in expected(host).services:
        service = host.service(name)
        assert service.is_running, name
        assert service.is_enabled, name


def test_sockets_present(host: Any) -> None:
    exp = expected(host)
    for path in (f"{exp.paths['php_run_dir']}/php{exp.php}-fpm.sock",
                 exp.paths["mysqld_socket"], exp.paths["redis_socket"]):
        assert host.socket(f"unix://{path}").is_listening, path


def test_mariadb_and_redis_listen_on_loopback_only(host: Any) -> None:
    listening = host.socket.get_listening_sockets()
    for port in ("3306", "6379"):
        bound = [s for s in listening if s.startswith("tcp://") and s.endswith(f":{port}")]
        assert bound, f"nothing listens on {port}"
        for spec in bound:
            address = spec.removeprefix("tcp://").rsplit(":", 1)[0]
            assert address in ("127.0.0.1", "::1"), spec
    assert host.socket("tcp://0.0.0.0:80").is_listening


def test_health_through_nginx(host: Any) -> None:
    out = host.run("curl -sS -w '\\n%{http_code}' http://127.0.0.1/health")
    body, _, code = out.stdout.rpartition("\n")
    assert code == "200", out.stdout
    report = json.loads(body)
    assert report["status"] == "ok"
    assert report["mariadb"]["ok"] is True and report["redis"]["ok"] is True
    assert report["php"].startswith(expected(host).php + ".")


def test_health_refuses_other_sources(host: Any) -> None:
    code = host.check_output(
        "curl -sS -o /dev/null -w '%{http_code}' --interface 127.0.0.2 http://127.0.0.1/health")
    assert code == "403"


def test_default_site_disabled_and_include_tree(host: Any) -> None:
    exp = expected(host)
    assert not host.file("/etc/nginx/sites-enabled/default").exists
    dump = host.check_output("nginx -T 2>/dev/null")
    master = exp.paths["server_master"]
    order = [dump.index(f"include {master}/nginx/{d}/*.conf;")
             for d in ("pre.d", "platform.d", "vhost.d", "post.d")]
    assert order == sorted(order)
    assert f"include {master}/nginx.conf;" in dump


def test_tuned_values_are_live(host: Any) -> None:
    exp = expected(host)
    t = exp.tuning
    assert int(sql(host, "SELECT @@innodb_buffer_pool_size")) == (
        t.mariadb.innodb_buffer_pool_size_mib * MIB)
    assert int(sql(host, "SELECT @@max_connections")) == t.mariadb.max_connections
    assert sql(host, "SELECT @@character_set_server") == "utf8mb4"
    assert redis(host, "CONFIG", "GET", "maxmemory").split() == [
        "maxmemory", str(t.redis.maxmemory_mib * MIB)]
    assert redis(host, "CONFIG", "GET", "maxmemory-policy").split()[1] == t.redis.maxmemory_policy
    nginx = host.check_output("nginx -T 2>/dev/null")
    assert f"worker_processes {t.nginx.worker_processes};" in nginx
    assert f"worker_connections {t.nginx.worker_connections};" in nginx
    assert "server_tokens off;" in nginx
    fpm = host.run(f"{exp.release.fpm_binary(exp.php)} -tt 2>&1").stdout
    assert f"pm.max_children = {t.php.pm_max_children}" in fpm
    ini = host.check_output(f"{exp.release.fpm_binary(exp.php)} -i")
    assert f"memory_limit => {t.php.fpm_memory_limit_mib}M" in ini
    assert f"opcache.memory_consumption => {t.php.opcache_memory_mib}" in ini


def test_secrets_are_root_0600_and_never_logged(host: Any) -> None:
    for path in (f"{SECRETS}/mariadb-root", f"{SECRETS}/redis", "/root/.my.cnf", CONFIG):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600), path
    health = host.file(expected(host).paths["health_secret"])
    assert (health.user, health.group, health.mode) == ("root", "www-data", 0o640)
    for name in ("mariadb-root", "redis"):
        secret = host.file(f"{SECRETS}/{name}").content_string.strip()
        assert len(secret) >= 32
        leaked = host.run(f"grep -rlF -e '{secret}' /var/log")
        assert leaked.rc == 1, f"{name} secret found in {leaked.stdout}"


def test_run_logs_and_versions(host: Any) -> None:
    assert host.file("/var/log/barracuda").is_directory
    versions = host.file("/var/log/barracuda/versions.log").content_string.splitlines()
    assert versions and "channel=stable" in versions[-1] and "nginx=" in versions[-1]
