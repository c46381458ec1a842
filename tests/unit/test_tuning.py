"""Tuning rules (profiles/tuning.yml) and installer/stack/tuning.py, and the templates that
consume them. Numbers come from the profile itself; the tests assert the invariants the rules
promise: the budget fits, floors and caps hold, more RAM never means less, overrides win."""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from installer.stack.tuning import Tuning, TuningFacts, compute, fmt_mib

REPO = Path(__file__).resolve().parents[2]
RULES: dict[str, Any] = yaml.safe_load((REPO / "profiles" / "tuning.yml").read_text())

GIB = 1024
# (RAM MiB, CPUs): the edges the rules must hold at.
EDGES = [(1 * GIB, 1), (2 * GIB, 2), (4 * GIB, 2), (16 * GIB, 8), (64 * GIB, 32), (256 * GIB, 64)]
COMPONENTS = ("nginx", "php", "mariadb", "redis")

# Share rules of the profile -> (Tuning field, what the fraction is taken of).
SHARES = {
    ("php", "fpm_memory_limit"): ("php.fpm_memory_limit_mib", "usable"),
    ("php", "cli_memory_limit"): ("php.cli_memory_limit_mib", "usable"),
    ("php", "opcache", "memory"): ("php.opcache_memory_mib", "usable"),
    ("php", "opcache", "interned_strings"): ("php.opcache_interned_strings_mib", "opcache"),
    ("mariadb", "innodb_buffer_pool"): ("mariadb.innodb_buffer_pool_size_mib", "usable"),
    ("mariadb", "innodb_log_file"): ("mariadb.innodb_log_file_size_mib", "pool"),
    ("mariadb", "tmp_table"): ("mariadb.tmp_table_size_mib", "usable"),
    ("redis", "maxmemory"): ("redis.maxmemory_mib", "usable"),
}


def tune(ram: int, cpus: int, **kwargs: Any) -> Tuning:
    return compute(RULES, TuningFacts(ram_mib=ram, cpus=cpus, **kwargs))


def rule(*path: str) -> Any:
    node: Any = RULES
    for key in path:
        node = node[key]
    return node


def value(tuning: Tuning, dotted: str) -> Any:
    component, field = dotted.split(".")
    return getattr(getattr(tuning, component), field)


def int_fields(tuning: Tuning) -> Iterator[tuple[str, int]]:
    for component in COMPONENTS:
        part = getattr(tuning, component)
        for field in dataclasses.fields(part):
            item = getattr(part, field.name)
            if isinstance(item, int):
                yield f"{component}.{field.name}", item


def leaf_paths(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path of the profile (sections and leaves; list items are not keys)."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield (*prefix, key)
            yield from leaf_paths(child, (*prefix, key))


def broken(path: tuple[str, ...], new: Any = None, delete: bool = False) -> dict[str, Any]:
    rules = copy.deepcopy(RULES)
    node = rules
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return rules


# --- the budget --------------------------------------------------------------------------


@pytest.mark.parametrize(("ram", "cpus"), EDGES)
def test_budget_fits_in_usable_ram(ram: int, cpus: int) -> None:
    t = tune(ram, cpus)
    parts = sum(getattr(t, c).budget_mib for c in COMPONENTS)
    assert t.budget_mib == parts
    assert t.budget_limit_mib == int(t.usable_ram_mib * rule("ram", "budget_fraction"))
    assert t.budget_mib <= t.budget_limit_mib < t.usable_ram_mib
    assert not t.warnings


@pytest.mark.parametrize(("ram", "cpus"), EDGES)
def test_budgets_cover_what_they_claim(ram: int, cpus: int) -> None:
    t = tune(ram, cpus)
    pool = rule("php", "pool")
    assert t.php.budget_mib >= t.php.opcache_memory_mib + (
        t.php.pm_max_children * pool["child_estimate_mib"]
    )
    assert t.mariadb.budget_mib >= (
        t.mariadb.innodb_buffer_pool_size_mib
        + t.mariadb.innodb_log_buffer_size_mib
        + t.mariadb.key_buffer_size_mib
        + t.mariadb.aria_pagecache_buffer_size_mib
    )
    assert t.redis.budget_mib > t.redis.maxmemory_mib
    assert t.nginx.budget_mib >= t.nginx.worker_processes * rule(
        "nginx", "budget", "per_worker_mib"
    )


def test_one_gib_box_bounds_php_by_ram_not_by_boa_floor() -> None:
    t = tune(1 * GIB, 1)
    pool = rule("php", "pool")
    # BOA would start at least children_floor (8) children of a 1 GiB memory_limit here.
    assert t.php.pm_max_children < pool["children_floor"]
    assert t.php.pm_max_children >= pool["children_min"]
    children_ram = t.php.pm_max_children * pool["child_estimate_mib"]
    assert children_ram <= t.usable_ram_mib * pool["children_ram_fraction"]
    assert t.nginx.worker_processes == 1
    assert t.budget_mib < 1 * GIB
    # Everything at its floor or small; nothing takes half the machine.
    for name, item in int_fields(t):
        if name.endswith("_mib") and not name.endswith("budget_mib"):
            assert item <= t.usable_ram_mib // 2, name


def test_big_box_uses_its_ram() -> None:
    t = tune(256 * GIB, 64)
    pool = rule("php", "pool")
    # By CPU, RAM is no bound here.
    assert t.php.pm_max_children == pool["children_multiplier"] * min(
        pool["children_cpu_cap"], 64 * pool["children_per_cpu"])
    assert t.nginx.worker_processes == 64
    # More for the database than BOA's RAM/8, caps reached where the rules set them.
    assert t.mariadb.innodb_buffer_pool_size_mib >= t.usable_ram_mib // 8
    assert t.redis.maxmemory_mib == rule("redis", "maxmemory", "cap_mib")
    assert t.php.opcache_memory_mib == rule("php", "opcache", "memory", "cap_mib")
    assert t.budget_mib >= t.usable_ram_mib // 4


@pytest.mark.parametrize("cpus", [1, 2, 3, 4, 8, 16, 24, 32, 48, 64])
@pytest.mark.parametrize("ram", [1 * GIB, 4 * GIB, 64 * GIB])
def test_sane_for_any_cpu_count(ram: int, cpus: int) -> None:
    t = tune(ram, cpus)
    pool = rule("php", "pool")
    assert 1 <= t.nginx.worker_processes <= cpus
    assert pool["children_min"] <= t.php.pm_max_children
    assert t.php.pm_max_children <= pool["children_multiplier"] * pool["children_cpu_cap"]
    assert t.nginx.worker_rlimit_nofile >= 2 * t.nginx.worker_connections
    assert t.budget_mib <= t.budget_limit_mib


def test_more_cpus_never_fewer_workers() -> None:
    previous = tune(8 * GIB, 1)
    for cpus in range(2, 65):
        current = tune(8 * GIB, cpus)
        assert current.nginx.worker_processes >= previous.nginx.worker_processes
        assert current.php.pm_max_children >= previous.php.pm_max_children
        previous = current


@pytest.mark.parametrize("cpus", [1, 2, 8, 64])
def test_monotonic_in_ram(cpus: int) -> None:
    steps = list(range(rule("ram", "min_usable_mib"), 8 * GIB, 61))
    steps += list(range(8 * GIB, 300 * GIB, 2039))
    previous = dict(int_fields(tune(steps[0], cpus)))
    for ram in steps[1:]:
        current = dict(int_fields(tune(ram, cpus)))
        for name, item in current.items():
            assert item >= previous[name], f"{name} drops from {previous[name]} at {ram} MiB"
        previous = current


def test_reserved_ram_reduces_the_budget() -> None:
    full = tune(16 * GIB, 8)
    reserved = tune(16 * GIB, 8, reserved_ram_mib=6 * GIB)
    same_usable = tune(10 * GIB, 8)
    assert reserved.usable_ram_mib == 10 * GIB
    assert reserved.budget_mib < full.budget_mib
    assert reserved.budget_limit_mib < full.budget_limit_mib
    assert reserved.mariadb.innodb_buffer_pool_size_mib < full.mariadb.innodb_buffer_pool_size_mib
    for (name, item), (_, plain) in zip(int_fields(reserved), int_fields(same_usable), strict=True):
        assert item == plain, name


def test_too_little_usable_ram_is_refused() -> None:
    minimum = rule("ram", "min_usable_mib")
    tune(minimum, 64)  # the smallest box the rules accept still fits its budget
    with pytest.raises(ValueError, match="_RESERVED_RAM"):
        tune(1 * GIB, 1, reserved_ram_mib=1 * GIB - minimum + 1)


# --- floors, caps, derived values ----------------------------------------------------------


@pytest.mark.parametrize("path", list(SHARES), ids=".".join)
@pytest.mark.parametrize(("ram", "cpus"), EDGES)
def test_share_rules_floor_cap_and_fraction(path: tuple[str, ...], ram: int, cpus: int) -> None:
    t = tune(ram, cpus)
    field, base_name = SHARES[path]
    share = rule(*path)
    base = {
        "usable": t.usable_ram_mib,
        "opcache": t.php.opcache_memory_mib,
        "pool": t.mariadb.innodb_buffer_pool_size_mib,
    }[base_name]
    got = value(t, field)
    assert got >= share["floor_mib"]
    if share["cap_mib"] is not None:
        assert got <= share["cap_mib"]
    if got not in (share["floor_mib"], share["cap_mib"]):
        assert got % share["round_mib"] == 0
        assert got <= base * share["fraction"] < got + share["round_mib"]


@pytest.mark.parametrize(("ram", "cpus"), EDGES)
def test_derived_values_hold_together(ram: int, cpus: int) -> None:
    t = tune(ram, cpus)
    assert (
        t.php.upload_max_filesize_mib < t.php.post_max_size_mib < t.nginx.client_max_body_size_mib
    )
    assert t.nginx.fastcgi_read_timeout_s > t.php.request_terminate_timeout_s
    assert t.php.opcache_interned_strings_mib < t.php.opcache_memory_mib
    assert t.php.fpm_memory_limit_mib <= t.php.cli_memory_limit_mib
    assert t.mariadb.innodb_log_file_size_mib <= t.mariadb.innodb_buffer_pool_size_mib
    assert t.mariadb.max_connections > t.php.pm_max_children
    assert t.mariadb.table_definition_cache == t.mariadb.table_open_cache
    files = rule("php", "opcache", "max_accelerated_files")
    assert files["floor"] <= t.php.opcache_max_accelerated_files <= files["cap"]
    conn = rule("mariadb", "max_connections")
    assert conn["floor"] <= t.mariadb.max_connections <= conn["cap"]
    toc = rule("mariadb", "table_open_cache")
    assert toc["floor"] <= t.mariadb.table_open_cache <= toc["cap"]


# --- overrides ---------------------------------------------------------------------------


@pytest.mark.parametrize(("ram", "cpus"), [(1 * GIB, 1), (16 * GIB, 8), (256 * GIB, 64)])
def test_worker_overrides_win(ram: int, cpus: int) -> None:
    t = tune(ram, cpus, nginx_workers=3, php_fpm_workers=5)
    assert t.nginx.worker_processes == 3
    assert t.php.pm_max_children == 5
    conn = rule("mariadb", "max_connections")
    assert t.mariadb.max_connections == max(
        conn["floor"], 5 * conn["per_fpm_child"] + conn["extra"]
    )
    assert any("_PHP_FPM_WORKERS override" in line for line in t.explain())


def test_override_beyond_ram_warns_instead_of_failing() -> None:
    auto = tune(1 * GIB, 1)
    t = tune(1 * GIB, 1, php_fpm_workers=auto.php.pm_max_children + 20)
    assert t.php.pm_max_children == auto.php.pm_max_children + 20
    assert t.warnings
    assert any(line.startswith("warning: _PHP_FPM_WORKERS") for line in t.explain())


@pytest.mark.parametrize(
    "facts",
    [
        {"nginx_workers": 0},
        {"php_fpm_workers": -1},
        {"cpus": 0},
        {"reserved_ram_mib": -1},
    ],
)
def test_bad_facts_raise(facts: dict[str, int]) -> None:
    kwargs: dict[str, Any] = {"ram_mib": 4 * GIB, "cpus": 2, **facts}
    with pytest.raises(ValueError, match="tuning facts"):
        compute(RULES, TuningFacts(**kwargs))


# --- broken rules --------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(leaf_paths(RULES)), ids=".".join)
def test_every_missing_key_is_named(path: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=re.escape(f"'{'.'.join(path)}'")):
        compute(broken(path, delete=True), TuningFacts(ram_mib=4 * GIB, cpus=2))


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("ram", "budget_fraction"), 0),
        (("ram", "budget_fraction"), 1.5),
        (("ram", "min_usable_mib"), "700"),
        (("nginx", "worker_connections"), True),
        (("nginx", "gzip_comp_level"), 10),
        (("nginx", "gzip_types"), "text/css"),
        (("php", "fpm_memory_limit", "fraction"), -0.1),
        (("php", "fpm_memory_limit", "floor_mib"), 0),
        (("php", "fpm_memory_limit", "cap_mib"), 128),
        (("php", "opcache", "max_accelerated_files", "cap"), 2_000_000),
        (("php", "pool", "pm"), "dynamic"),
        (("php", "pool", "child_estimate_mib"), 1.5),
        (("php", "pool"), ["ondemand"]),
        (("mariadb", "innodb_flush_log_at_trx_commit"), 5),
        (("mariadb", "transaction_isolation"), "READ COMMITTED"),
        (("mariadb", "collation"), "latin1_swedish_ci"),
        (("mariadb", "innodb_buffer_pool", "cap_mib"), "none"),
        (("redis", "maxmemory_policy"), "volatile-everything"),
        (("redis", "budget", "overhead_factor"), 0.5),
    ],
)
def test_bad_values_are_named(path: tuple[str, ...], bad: Any) -> None:
    with pytest.raises(ValueError, match=re.escape(".".join(path))):
        compute(broken(path, bad), TuningFacts(ram_mib=4 * GIB, cpus=2))


def test_inconsistent_fastcgi_buffers_are_refused() -> None:
    rules = broken(("nginx", "fastcgi_busy_buffers_size_k"), 4096)
    with pytest.raises(ValueError, match="fastcgi_busy_buffers_size_k"):
        compute(rules, TuningFacts(ram_mib=4 * GIB, cpus=2))


def test_rules_that_overcommit_ram_are_refused() -> None:
    rules = broken(("mariadb", "innodb_buffer_pool", "fraction"), 0.8)
    with pytest.raises(ValueError, match="overcommit"):
        compute(rules, TuningFacts(ram_mib=16 * GIB, cpus=8))


def test_rules_must_be_a_mapping() -> None:
    with pytest.raises(ValueError, match="must be a mapping"):
        compute([], TuningFacts(ram_mib=4 * GIB, cpus=2))  # type: ignore[arg-type]


# --- explain -----------------------------------------------------------------------------


def test_explain_has_one_line_per_value_with_its_rule() -> None:
    t = tune(12 * GIB, 4)
    lines = t.explain()
    assert all(re.fullmatch(r"[^=]+ = \S.*: .+", line) for line in lines), lines
    for component in COMPONENTS:
        count = len(dataclasses.fields(getattr(t, component)))
        assert len([line for line in lines if line.startswith(f"{component} ")]) == count
    pool = next(line for line in lines if " innodb_buffer_pool_size = " in line)
    assert pool.startswith(
        f"mariadb innodb_buffer_pool_size = {t.mariadb.innodb_buffer_pool_size_mib}M:"
    )
    assert f"usable RAM {t.usable_ram_mib} MiB" in pool
    assert lines[-1].startswith(f"total budget = {t.budget_mib}M")


def test_fmt() -> None:
    assert fmt_mib(512) == "512M"
    assert fmt_mib(96, "mb") == "96mb"


# --- templates consume the tuning -----------------------------------------------------------

TEMPLATES = {
    "nginx/nginx.conf.j2": "etc/nginx/nginx.conf",
    "nginx/barracuda.conf.j2": "etc/nginx/conf.d/barracuda.conf",
    "nginx/server_master.conf.j2": "var/aegir/config/server_master/nginx.conf",
    "nginx/master_vhost.conf.j2": "var/aegir/config/server_master/nginx/vhost.d/000-master.conf",
    "php/health.php.j2": "var/www/barracuda/health.php",
    "php/php-fpm.conf.j2": "etc/php/{v}/fpm/php-fpm.conf",
    "php/pool-master.conf.j2": "etc/php/{v}/fpm/pool.d/www.conf",
    "php/php.ini.j2": "etc/php/{v}/fpm/conf.d/90-barracuda.ini",
    "php/php-cli.ini.j2": "etc/php/{v}/cli/conf.d/90-barracuda.ini",
    "mariadb/barracuda.cnf.j2": "etc/mysql/mariadb.conf.d/90-barracuda.cnf",
    "mariadb/root-my.cnf.j2": "root/.my.cnf",
    "redis/redis.conf.j2": "etc/redis/redis.conf",
}
PHP = "8.2"


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(REPO / "templates")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def context(root: Path, tuning: Tuning, **extra: Any) -> dict[str, Any]:
    paths = yaml.safe_load((REPO / "profiles" / "paths.yml").read_text())
    return {
        "tuning": tuning,
        "php_version": PHP,
        "php_versions": [PHP],
        "paths": {key: f"{root}{path}" for key, path in paths.items()},
        "redis_password": "RedisPassw0rd",
        "mariadb_root_password": "R00tPassw0rd",
        "ipv6": True,
        "nginx": yaml.safe_load((REPO / "profiles" / "nginx.yml").read_text()),
        "http2": "listen",
        **extra,
    }


def render_tree(root: Path, tuning: Tuning) -> dict[str, str]:
    env, ctx, out = environment(), context(root, tuning), {}
    for name, dest in TEMPLATES.items():
        target = root / dest.format(v=PHP)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(env.get_template(name).render(**ctx))
        out[name] = target.read_text()
    return out


@pytest.fixture(params=[(1 * GIB, 1), (256 * GIB, 64)], ids=["1GiB", "256GiB"])
def tree(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Tuning, dict[str, str]]:
    tuning = tune(*request.param)
    return tmp_path, tuning, render_tree(tmp_path, tuning)


def test_templates_carry_the_tuned_values(tree: tuple[Path, Tuning, dict[str, str]]) -> None:
    root, t, files = tree
    expect = {
        "nginx/nginx.conf.j2": [
            f"worker_processes {t.nginx.worker_processes};",
            f"worker_connections {t.nginx.worker_connections};",
            f"include {root}/etc/nginx/conf.d/*.conf;",
        ],
        "php/pool-master.conf.j2": [
            f"pm.max_children = {t.php.pm_max_children}",
            f"listen = {root}/run/php/php{PHP}-fpm.sock",
        ],
        "php/php.ini.j2": [
            f"memory_limit = {t.php.fpm_memory_limit_mib}M",
            f"opcache.memory_consumption = {t.php.opcache_memory_mib}",
            "opcache.validate_permission = 1",
            "opcache.validate_root = 1",
        ],
        "php/php-cli.ini.j2": [f"memory_limit = {t.php.cli_memory_limit_mib}M"],
        "mariadb/barracuda.cnf.j2": [
            f"innodb_buffer_pool_size = {t.mariadb.innodb_buffer_pool_size_mib}M",
            f"max_connections = {t.mariadb.max_connections}",
        ],
        "redis/redis.conf.j2": [
            f"maxmemory {t.redis.maxmemory_mib}mb",
            f"maxmemory-policy {t.redis.maxmemory_policy}",
        ],
    }
    for name, needles in expect.items():
        for needle in needles:
            assert needle in [x.strip() for x in files[name].splitlines()], (name, needle)
    for name, text in files.items():
        assert "{{" not in text and "{#" not in text, name
        assert "Managed by" not in text, name
        # Every absolute path in a setting comes from the context, so the tree renders into
        # a scratch root (comments and the PATH handed to PHP workers aside).
        for line in text.splitlines():
            if line.lstrip().startswith(("#", ";", "//", "env[PATH]")):
                continue
            for path in re.findall(r"(?<![\w.:/$-])/(?:etc|var|run|usr|root|tmp)/[\w./*-]*", line):
                assert path.startswith(str(root)), (name, line)
    assert "sites-enabled" not in "".join(
        line for line in files["nginx/nginx.conf.j2"].splitlines() if not line.startswith("#")
    )
    master = files["nginx/server_master.conf.j2"].splitlines()
    hooks = [line for line in master if line.startswith("include ")]
    assert [h.split("/nginx/")[-1] for h in hooks] == [
        "pre.d/*.conf;",
        "platform.d/*.conf;",
        "vhost.d/*.conf;",
        "post.d/*.conf;",
    ]
    for name in (
        "php/php.ini.j2",
        "php/php-cli.ini.j2",
        "php/pool-master.conf.j2",
        "php/php-fpm.conf.j2",
    ):
        assert not any(line.lstrip().startswith("#") for line in files[name].splitlines()), name


@pytest.mark.parametrize(
    ("template", "secret"),
    [
        ("redis/redis.conf.j2", "redis_password"),
        ("mariadb/root-my.cnf.j2", "mariadb_root_password"),
    ],
)
@pytest.mark.parametrize("bad", ["", 'quo"te', "semi;colon", "with space"])
def test_secrets_must_be_alphanumeric(tmp_path: Path, template: str, secret: str, bad: str) -> None:
    ctx = context(tmp_path, tune(4 * GIB, 2), **{secret: bad})
    with pytest.raises(jinja2.UndefinedError, match="must_be_alphanumeric"):
        environment().get_template(template).render(**ctx)


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(
    not Path("/etc/nginx/mime.types").is_file() or not shutil.which("nginx"),
    reason="Debian's nginx is not installed",
)
def test_nginx_accepts_the_tree(tree: tuple[Path, Tuning, dict[str, str]]) -> None:
    root = tree[0]
    for name in ("mime.types", "fastcgi_params"):
        shutil.copy(f"/etc/nginx/{name}", root / "etc/nginx" / name)
    for folder in ("etc/nginx/modules-enabled", "var/log/nginx"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    result = run(["nginx", "-t", "-q", "-c", f"{root}/etc/nginx/nginx.conf"])
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not shutil.which(f"php-fpm{PHP}"), reason=f"php{PHP}-fpm is not installed")
def test_php_fpm_accepts_the_config(tree: tuple[Path, Tuning, dict[str, str]]) -> None:
    root, t, _ = tree
    (root / "var/log/php").mkdir(parents=True, exist_ok=True)
    result = run([f"php-fpm{PHP}", "-t", "-y", f"{root}/etc/php/{PHP}/fpm/php-fpm.conf"])
    assert result.returncode == 0, result.stderr
    ini = f"{root}/etc/php/{PHP}/fpm/conf.d/90-barracuda.ini"
    result = run(["php", "-n", "-c", ini, "-r", 'echo ini_get("memory_limit");'])
    assert result.stdout == f"{t.php.fpm_memory_limit_mib}M", result.stderr


@pytest.mark.skipif(not shutil.which("mariadbd"), reason="mariadb-server is not installed")
def test_mariadb_accepts_the_options(tree: tuple[Path, Tuning, dict[str, str]]) -> None:
    root, t, _ = tree
    cnf = f"{root}/etc/mysql/mariadb.conf.d/90-barracuda.cnf"
    result = run(["mariadbd", f"--defaults-file={cnf}", "--verbose", "--help"])
    assert result.returncode == 0, result.stderr
    assert "unknown" not in result.stderr.lower()
    pool = re.search(r"^innodb-buffer-pool-size\s+(\d+)$", result.stdout, re.MULTILINE)
    assert pool and int(pool.group(1)) == t.mariadb.innodb_buffer_pool_size_mib * 1024 * 1024


def test_reserved_ram_that_leaves_too_little_is_a_config_error_at_its_line(
        tmp_path: Path) -> None:
    """The operator's _RESERVED_RAM, not the shipped rules, is to blame: exit 3 at its line."""
    import os
    import subprocess
    import sys

    import psutil

    ram = int(psutil.virtual_memory().total // (1024 * 1024))
    cnf = tmp_path / "barracuda.cnf"
    cnf.write_text(f"_MY_EMAIL=ops@example.org\n_RESERVED_RAM={ram - 100}\n")
    root = tmp_path / "root"
    root.mkdir()
    environ = {k: v for k, v in os.environ.items() if k != "BARRACUDA_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-m", "installer.cli.barracuda", "install", "--root", str(root),
         "--config", str(cnf), "--dry-run"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, env=environ, timeout=60,
        check=False)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {cnf}:2: _RESERVED_RAM: usable RAM 100 MiB"), lines
    assert list(root.iterdir()) == []
