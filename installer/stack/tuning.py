"""Tuning of the stack (Nginx, PHP-FPM, MariaDB, Redis) from the machine's CPUs and RAM.

Pure: `compute()` reads the parsed rules of profiles/tuning.yml and the facts, and returns
plain values (memory in MiB, times in seconds) plus one explanation line per value. A rules
mapping with a missing or malformed key raises ValueError naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

REDIS_POLICIES = (
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
)
ISOLATION_LEVELS = ("READ-UNCOMMITTED", "READ-COMMITTED", "REPEATABLE-READ", "SERIALIZABLE")


def fmt_mib(mib: int, unit: str = "M") -> str:
    """Format MiB for a config file: 512 -> "512M" (nginx, PHP, MariaDB); unit "mb" for Redis."""
    return f"{mib}{unit}"


@dataclass(frozen=True)
class TuningFacts:
    """What the rules read."""

    ram_mib: int
    cpus: int
    reserved_ram_mib: int = 0
    nginx_workers: int | None = None  # None = AUTO
    php_fpm_workers: int | None = None  # None = AUTO


@dataclass(frozen=True)
class NginxTuning:
    worker_processes: int
    worker_connections: int
    worker_rlimit_nofile: int
    keepalive_timeout_s: int
    keepalive_requests: int
    gzip_comp_level: int
    gzip_min_length: int
    gzip_types: tuple[str, ...]
    client_max_body_size_mib: int
    fastcgi_buffer_size_k: int
    fastcgi_buffers_count: int
    fastcgi_buffers_size_k: int
    fastcgi_busy_buffers_size_k: int
    fastcgi_connect_timeout_s: int
    fastcgi_send_timeout_s: int
    fastcgi_read_timeout_s: int
    budget_mib: int


@dataclass(frozen=True)
class PhpTuning:
    fpm_memory_limit_mib: int
    cli_memory_limit_mib: int
    opcache_memory_mib: int
    opcache_interned_strings_mib: int
    opcache_max_accelerated_files: int
    opcache_revalidate_freq_s: int
    realpath_cache_size_mib: int
    realpath_cache_ttl_s: int
    upload_max_filesize_mib: int
    post_max_size_mib: int
    max_execution_time_s: int
    max_input_time_s: int
    max_input_vars: int
    emergency_restart_threshold: int
    emergency_restart_interval_s: int
    process_control_timeout_s: int
    pm: str
    pm_max_children: int
    pm_process_idle_timeout_s: int
    pm_max_requests: int
    request_terminate_timeout_s: int
    request_slowlog_timeout_s: int
    budget_mib: int


@dataclass(frozen=True)
class MariadbTuning:
    innodb_buffer_pool_size_mib: int
    innodb_log_file_size_mib: int
    innodb_log_buffer_size_mib: int
    tmp_table_size_mib: int  # max_heap_table_size is set to the same value
    table_open_cache: int
    table_definition_cache: int
    max_connections: int
    max_allowed_packet_mib: int
    key_buffer_size_mib: int
    aria_pagecache_buffer_size_mib: int
    wait_timeout_s: int
    innodb_lock_wait_timeout_s: int
    innodb_flush_log_at_trx_commit: int
    transaction_isolation: str
    character_set: str
    collation: str
    budget_mib: int


@dataclass(frozen=True)
class RedisTuning:
    maxmemory_mib: int
    maxmemory_policy: str
    timeout_s: int
    tcp_keepalive_s: int
    databases: int
    budget_mib: int


@dataclass(frozen=True)
class Tuning:
    ram_mib: int
    reserved_ram_mib: int
    usable_ram_mib: int
    cpus: int
    nginx: NginxTuning
    php: PhpTuning
    mariadb: MariadbTuning
    redis: RedisTuning
    budget_mib: int  # sum of the four budgets
    budget_limit_mib: int  # what they may use: usable RAM x ram.budget_fraction
    warnings: tuple[str, ...]
    explanation: tuple[str, ...]

    def explain(self) -> list[str]:
        """One line per computed value with the rule that produced it, then the budget."""
        return list(self.explanation)


# --- reading the rules -------------------------------------------------------------------


class _Rules:
    """Typed access to one section of the rules; errors name the full dotted key."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            where = f"'{path}'" if path else "the top level"
            raise ValueError(f"tuning rules: {where} must be a mapping, got {data!r}")
        self._data, self._path = data, path

    def _key(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _raw(self, key: str) -> Any:
        if key not in self._data:
            raise ValueError(f"tuning rules: missing key '{self._key(key)}'")
        return self._data[key]

    def _bad(self, key: str, expected: str) -> ValueError:
        return ValueError(
            f"tuning rules: '{self._key(key)}' must be {expected}, got {self._data[key]!r}"
        )

    def section(self, key: str) -> _Rules:
        return _Rules(self._raw(key), self._key(key))

    def integer(self, key: str, minimum: int = 0, maximum: int | None = None) -> int:
        value = self._raw(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < minimum
            or (maximum is not None and value > maximum)
        ):
            bound = f" <= {maximum}" if maximum is not None else ""
            raise self._bad(key, f"an integer >= {minimum}{bound}")
        return value

    def cap(self, key: str) -> int | None:
        return None if self._raw(key) is None else self.integer(key, 1)

    def number(self, key: str, low: float, high: float) -> float:
        value = self._raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
            raise self._bad(key, f"a number above {low} and at most {high}")
        return float(value)

    def text(self, key: str, choices: tuple[str, ...] = ()) -> str:
        value = self._raw(key)
        if not isinstance(value, str) or not value or (choices and value not in choices):
            raise self._bad(
                key, f"one of {', '.join(choices)}" if choices else "a non-empty string"
            )
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._raw(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._bad(key, "a list of non-empty strings")
        return tuple(value)

    def share(self, key: str) -> _Share:
        rule = self.section(key)
        share = _Share(
            rule.number("fraction", 0.0, 1.0),
            rule.integer("floor_mib", 1),
            rule.cap("cap_mib"),
            rule.integer("round_mib", 1),
        )
        if share.cap is not None and share.cap < share.floor:
            raise ValueError(f"tuning rules: '{self._key(key)}.cap_mib' is below its floor_mib")
        return share


@dataclass(frozen=True)
class _Share:
    fraction: float
    floor: int
    cap: int | None
    round_to: int

    def apply(self, base: int) -> int:
        value = int(base * self.fraction) // self.round_to * self.round_to
        value = max(self.floor, value)
        return value if self.cap is None else min(self.cap, value)

    def describe(self, base_name: str, base: int) -> str:
        cap = "no cap" if self.cap is None else f"cap {self.cap}M"
        return f"{_fraction(self.fraction)} of {base_name} {base} MiB (floor {self.floor}M, {cap})"


def _fraction(value: float) -> str:
    inverse = 1 / value
    if abs(inverse - round(inverse)) < 1e-9:
        return f"1/{round(inverse)}"
    return f"{value * 100:g}%"


def _clamp(value: int, floor: int, cap: int) -> int:
    return max(floor, min(cap, value))


# --- computing ---------------------------------------------------------------------------


class _Log:
    """The rule behind each value, keyed by "component.field"; unnamed fields are fixed."""

    def __init__(self) -> None:
        self.rules: dict[str, str] = {}

    def add(self, key: str, rule: str) -> None:
        self.rules[key] = rule

    def lines(self, component: str, values: Any) -> list[str]:
        out = []
        for field in fields(values):
            value = getattr(values, field.name)
            rule = self.rules.get(f"{component}.{field.name}", "fixed")
            out.append(f"{component} {_display(field.name, value)}: {rule}")
        return out


def _display(name: str, value: Any) -> str:
    """`innodb_buffer_pool_size_mib`, 256 -> `innodb_buffer_pool_size = 256M`."""
    for suffix, unit in (("_mib", "M"), ("_s", "s"), ("_k", "k")):
        if name.endswith(suffix):
            return f"{name.removesuffix(suffix)} = {value}{unit}"
    if isinstance(value, tuple):
        value = " ".join(value)
    return f"{name} = {value}"


class OperatorChoice(ValueError):
    """The operator's settings (not the rules) leave no room: `key` is the setting to change."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _check_facts(facts: TuningFacts) -> None:
    if facts.ram_mib < 1 or facts.cpus < 1 or facts.reserved_ram_mib < 0:
        raise ValueError(
            f"tuning facts: RAM ({facts.ram_mib} MiB) and CPUs ({facts.cpus}) must be positive,"
            f" reserved RAM ({facts.reserved_ram_mib} MiB) not negative"
        )
    for name, value in (
        ("_NGINX_WORKERS", facts.nginx_workers),
        ("_PHP_FPM_WORKERS", facts.php_fpm_workers),
    ):
        if value is not None and value < 1:
            raise ValueError(
                f"tuning facts: {name} must be AUTO or a positive integer, got {value}"
            )


def compute(rules: Mapping[str, Any], facts: TuningFacts) -> Tuning:
    """Compute every tuned value from the rules (profiles/tuning.yml) and the facts."""
    _check_facts(facts)
    root = _Rules(rules, "")
    ram = root.section("ram")
    min_usable = ram.integer("min_usable_mib", 1)
    budget_fraction = ram.number("budget_fraction", 0.0, 1.0)
    usable = facts.ram_mib - facts.reserved_ram_mib
    if usable < min_usable:
        raise OperatorChoice(
            "_RESERVED_RAM",
            f"usable RAM {usable} MiB (total {facts.ram_mib} - reserved {facts.reserved_ram_mib})"
            f" is below the {min_usable} MiB the tuning rules need; lower _RESERVED_RAM"
        )
    log, warnings = _Log(), list[str]()
    php = _php(root.section("php"), facts, usable, log, warnings)
    nginx = _nginx(root.section("nginx"), facts, usable, php, log)
    mariadb = _mariadb(root.section("mariadb"), usable, php, log)
    redis = _redis(root.section("redis"), usable, log)

    total = nginx.budget_mib + php.budget_mib + mariadb.budget_mib + redis.budget_mib
    limit = int(usable * budget_fraction)
    if total > limit:
        message = (
            f"memory budgets add up to {total} MiB, over the {limit} MiB allowed"
            f" ({_fraction(budget_fraction)} of usable RAM {usable} MiB)"
        )
        if facts.php_fpm_workers is None and facts.nginx_workers is None:
            raise ValueError(f"tuning rules overcommit RAM: {message}")
        warnings.append(f"{message}, because of the worker overrides")
    lines = [
        f"usable RAM = {usable}M: total {facts.ram_mib} MiB - _RESERVED_RAM"
        f" {facts.reserved_ram_mib} MiB; {facts.cpus} CPU(s)",
        *log.lines("nginx", nginx),
        *log.lines("php", php),
        *log.lines("mariadb", mariadb),
        *log.lines("redis", redis),
        f"total budget = {total}M: nginx {nginx.budget_mib} + php {php.budget_mib}"
        f" + mariadb {mariadb.budget_mib} + redis {redis.budget_mib} MiB; limit {limit} MiB"
        f" = {_fraction(budget_fraction)} of usable RAM {usable} MiB",
        *(f"warning: {w}" for w in warnings),
    ]
    return Tuning(
        ram_mib=facts.ram_mib,
        reserved_ram_mib=facts.reserved_ram_mib,
        usable_ram_mib=usable,
        cpus=facts.cpus,
        nginx=nginx,
        php=php,
        mariadb=mariadb,
        redis=redis,
        budget_mib=total,
        budget_limit_mib=limit,
        warnings=tuple(warnings),
        explanation=tuple(lines),
    )


def _php(
    rules: _Rules, facts: TuningFacts, usable: int, log: _Log, warnings: list[str]
) -> PhpTuning:
    fpm_rule = rules.share("fpm_memory_limit")
    fpm_limit = fpm_rule.apply(usable)
    log.add("php.fpm_memory_limit_mib", fpm_rule.describe("usable RAM", usable))
    cli_rule = rules.share("cli_memory_limit")
    cli_limit = cli_rule.apply(usable)
    log.add("php.cli_memory_limit_mib", cli_rule.describe("usable RAM", usable))

    opc = rules.section("opcache")
    opc_rule = opc.share("memory")
    opcache = opc_rule.apply(usable)
    log.add("php.opcache_memory_mib", opc_rule.describe("usable RAM", usable))
    interned_rule = opc.share("interned_strings")
    interned = interned_rule.apply(opcache)
    if interned >= opcache:
        raise ValueError("tuning rules: 'php.opcache.interned_strings' must stay below the OPcache")
    log.add("php.opcache_interned_strings_mib", interned_rule.describe("OPcache", opcache))
    files_rule = opc.section("max_accelerated_files")
    per_mib = files_rule.integer("files_per_mib", 1)
    files_floor = files_rule.integer("floor", 200)
    files_cap = files_rule.integer("cap", files_floor, 1_000_000)
    files = _clamp(opcache * per_mib, files_floor, files_cap)
    log.add(
        "php.opcache_max_accelerated_files",
        f"OPcache {opcache} MiB x {per_mib} (floor {files_floor}, cap {files_cap})",
    )

    upload = rules.integer("upload_max_filesize_mib", 1)
    post = upload + rules.integer("post_margin_mib")
    log.add("php.post_max_size_mib", f"upload_max_filesize {upload}M + php.post_margin_mib")

    glob = rules.section("fpm_global")
    pool = rules.section("pool")
    pm = pool.text("pm", ("ondemand",))
    children, children_rule, ram_bound = _children(pool, facts, usable)
    if facts.php_fpm_workers is not None and children > ram_bound:
        warnings.append(
            f"_PHP_FPM_WORKERS={children} exceeds the {ram_bound} children RAM can hold"
        )
    log.add("php.pm_max_children", children_rule)
    estimate = pool.integer("child_estimate_mib", 1)
    budget = opcache + children * estimate
    log.add("php.budget_mib", f"OPcache {opcache} + {children} children x {estimate} MiB")
    return PhpTuning(
        fpm_memory_limit_mib=fpm_limit,
        cli_memory_limit_mib=cli_limit,
        opcache_memory_mib=opcache,
        opcache_interned_strings_mib=interned,
        opcache_max_accelerated_files=files,
        opcache_revalidate_freq_s=opc.integer("revalidate_freq_s"),
        realpath_cache_size_mib=rules.integer("realpath_cache_size_mib", 1),
        realpath_cache_ttl_s=rules.integer("realpath_cache_ttl_s", 1),
        upload_max_filesize_mib=upload,
        post_max_size_mib=post,
        max_execution_time_s=rules.integer("max_execution_time_s"),
        max_input_time_s=rules.integer("max_input_time_s"),
        max_input_vars=rules.integer("max_input_vars", 1),
        emergency_restart_threshold=glob.integer("emergency_restart_threshold", 1),
        emergency_restart_interval_s=glob.integer("emergency_restart_interval_s", 1),
        process_control_timeout_s=glob.integer("process_control_timeout_s", 1),
        pm=pm,
        pm_max_children=children,
        pm_process_idle_timeout_s=pool.integer("process_idle_timeout_s", 1),
        pm_max_requests=pool.integer("max_requests"),
        request_terminate_timeout_s=pool.integer("request_terminate_timeout_s", 1),
        request_slowlog_timeout_s=pool.integer("request_slowlog_timeout_s"),
        budget_mib=budget,
    )


def _children(pool: _Rules, facts: TuningFacts, usable: int) -> tuple[int, str, int]:
    """pm.max_children, the rule that gave it, and the bound RAM sets."""
    per_cpu = pool.integer("children_per_cpu", 1)
    cpu_cap = pool.integer("children_cpu_cap", 1)
    multiplier = pool.integer("children_multiplier", 1)
    floor = pool.integer("children_floor", 1)
    minimum = pool.integer("children_min", 1)
    ram_fraction = pool.number("children_ram_fraction", 0.0, 1.0)
    estimate = pool.integer("child_estimate_mib", 1)
    by_cpu = max(floor, multiplier * min(cpu_cap, facts.cpus * per_cpu))
    by_ram = math.floor(usable * ram_fraction / estimate)
    cpu_text = (
        f"by CPU {by_cpu} = max({floor}, {multiplier} x min({cpu_cap}, {facts.cpus} CPUs"
        f" x {per_cpu}))"
    )
    ram_text = (
        f"by RAM {by_ram} = {_fraction(ram_fraction)} of usable RAM {usable} MiB"
        f" / {estimate} MiB per child"
    )
    if facts.php_fpm_workers is not None:
        return facts.php_fpm_workers, f"_PHP_FPM_WORKERS override ({ram_text})", by_ram
    children = max(minimum, min(by_cpu, by_ram))
    return children, f"min({cpu_text}, {ram_text}), at least {minimum}", by_ram


def _nginx(
    rules: _Rules, facts: TuningFacts, usable: int, php: PhpTuning, log: _Log
) -> NginxTuning:
    budget = rules.section("budget")
    per_worker = budget.integer("per_worker_mib", 1)
    shared = budget.integer("shared_mib")
    per_cpu = rules.integer("workers_per_cpu", 1)
    ram_fraction = rules.number("workers_ram_fraction", 0.0, 1.0)
    by_ram = max(1, math.floor(usable * ram_fraction / per_worker))
    if facts.nginx_workers is not None:
        workers = facts.nginx_workers
        log.add("nginx.worker_processes", "_NGINX_WORKERS override")
    else:
        workers = min(facts.cpus * per_cpu, by_ram)
        log.add(
            "nginx.worker_processes",
            f"min({facts.cpus} CPUs x {per_cpu}, {by_ram} by RAM ="
            f" {_fraction(ram_fraction)} of usable RAM {usable} MiB / {per_worker} MiB)",
        )
    connections = rules.integer("worker_connections", 1)
    nofile = connections * rules.integer("nofile_per_connection", 1) + rules.integer("nofile_extra")
    log.add("nginx.worker_rlimit_nofile", "worker_connections x nofile_per_connection + extra")
    body = php.post_max_size_mib + rules.integer("client_body_margin_mib")
    log.add(
        "nginx.client_max_body_size_mib",
        f"php post_max_size {php.post_max_size_mib}M + nginx.client_body_margin_mib",
    )
    buffer_size = rules.integer("fastcgi_buffer_size_k", 1)
    count = rules.integer("fastcgi_buffers_count", 2)
    size = rules.integer("fastcgi_buffers_size_k", 1)
    busy = rules.integer("fastcgi_busy_buffers_size_k", 1)
    if not max(buffer_size, size) <= busy <= (count - 1) * size:
        raise ValueError(
            "tuning rules: 'nginx.fastcgi_busy_buffers_size_k' must be >= the buffer sizes"
            " and <= (fastcgi_buffers_count - 1) x fastcgi_buffers_size_k"
        )
    timeout = php.request_terminate_timeout_s + rules.integer("fastcgi_timeout_margin_s")
    for name in ("fastcgi_send_timeout_s", "fastcgi_read_timeout_s"):
        log.add(
            f"nginx.{name}",
            f"php request_terminate_timeout"
            f" {php.request_terminate_timeout_s}s + nginx.fastcgi_timeout_margin_s",
        )
    nginx_budget = workers * per_worker + shared
    log.add("nginx.budget_mib", f"{workers} workers x {per_worker} + {shared} MiB")
    return NginxTuning(
        worker_processes=workers,
        worker_connections=connections,
        worker_rlimit_nofile=nofile,
        keepalive_timeout_s=rules.integer("keepalive_timeout_s"),
        keepalive_requests=rules.integer("keepalive_requests", 1),
        gzip_comp_level=rules.integer("gzip_comp_level", 1, 9),
        gzip_min_length=rules.integer("gzip_min_length"),
        gzip_types=rules.texts("gzip_types"),
        client_max_body_size_mib=body,
        fastcgi_buffer_size_k=buffer_size,
        fastcgi_buffers_count=count,
        fastcgi_buffers_size_k=size,
        fastcgi_busy_buffers_size_k=busy,
        fastcgi_connect_timeout_s=rules.integer("fastcgi_connect_timeout_s", 1),
        fastcgi_send_timeout_s=timeout,
        fastcgi_read_timeout_s=timeout,
        budget_mib=nginx_budget,
    )


def _mariadb(rules: _Rules, usable: int, php: PhpTuning, log: _Log) -> MariadbTuning:
    pool_rule = rules.share("innodb_buffer_pool")
    pool = pool_rule.apply(usable)
    log.add("mariadb.innodb_buffer_pool_size_mib", pool_rule.describe("usable RAM", usable))
    redo_rule = rules.share("innodb_log_file")
    log.add("mariadb.innodb_log_file_size_mib", redo_rule.describe("buffer pool", pool))
    log_buffer = rules.integer("innodb_log_buffer_size_mib", 1)
    tmp_rule = rules.share("tmp_table")
    log.add(
        "mariadb.tmp_table_size_mib",
        tmp_rule.describe("usable RAM", usable) + "; max_heap_table_size the same",
    )
    toc = rules.section("table_open_cache")
    per_gib = toc.integer("per_gib", 1)
    toc_floor = toc.integer("floor", 1)
    toc_cap = toc.integer("cap", toc_floor)
    tables = _clamp(usable * per_gib // 1024, toc_floor, toc_cap)
    for name in ("table_open_cache", "table_definition_cache"):
        log.add(
            f"mariadb.{name}", f"{per_gib} per GiB of usable RAM (floor {toc_floor}, cap {toc_cap})"
        )
    conn = rules.section("max_connections")
    per_child = conn.integer("per_fpm_child", 1)
    extra = conn.integer("extra")
    conn_floor = conn.integer("floor", 1)
    conn_cap = conn.integer("cap", conn_floor)
    connections = _clamp(php.pm_max_children * per_child + extra, conn_floor, conn_cap)
    log.add(
        "mariadb.max_connections",
        f"{php.pm_max_children} FPM children x {per_child} + {extra}"
        f" (floor {conn_floor}, cap {conn_cap})",
    )
    key_buffer = rules.integer("key_buffer_size_mib", 1)
    aria = rules.integer("aria_pagecache_buffer_size_mib", 1)
    charset = rules.text("character_set")
    collation = rules.text("collation")
    if not collation.startswith(f"{charset}_"):
        raise ValueError(
            f"tuning rules: 'mariadb.collation' {collation!r} is not a {charset} collation"
        )
    budget = rules.section("budget")
    overhead = budget.integer("overhead_mib")
    per_connection = budget.integer("per_connection_mib")
    busy = php.pm_max_children * per_connection
    total = pool + log_buffer + key_buffer + aria + overhead + busy
    log.add(
        "mariadb.budget_mib",
        f"buffer pool {pool} + log buffer {log_buffer} + key buffer {key_buffer} + aria"
        f" {aria} + overhead {overhead} + {php.pm_max_children} busy connections x"
        f" {per_connection} MiB",
    )
    return MariadbTuning(
        innodb_buffer_pool_size_mib=pool,
        innodb_log_file_size_mib=redo_rule.apply(pool),
        innodb_log_buffer_size_mib=log_buffer,
        tmp_table_size_mib=tmp_rule.apply(usable),
        table_open_cache=tables,
        table_definition_cache=tables,
        max_connections=connections,
        max_allowed_packet_mib=rules.integer("max_allowed_packet_mib", 1, 1024),
        key_buffer_size_mib=key_buffer,
        aria_pagecache_buffer_size_mib=aria,
        wait_timeout_s=rules.integer("wait_timeout_s", 1),
        innodb_lock_wait_timeout_s=rules.integer("innodb_lock_wait_timeout_s", 1),
        innodb_flush_log_at_trx_commit=rules.integer("innodb_flush_log_at_trx_commit", 0, 2),
        transaction_isolation=rules.text("transaction_isolation", ISOLATION_LEVELS),
        character_set=charset,
        collation=collation,
        budget_mib=total,
    )


def _redis(rules: _Rules, usable: int, log: _Log) -> RedisTuning:
    rule = rules.share("maxmemory")
    maxmemory = rule.apply(usable)
    log.add("redis.maxmemory_mib", rule.describe("usable RAM", usable))
    budget = rules.section("budget")
    factor = budget.number("overhead_factor", 0.0, 4.0)
    if factor < 1:
        raise ValueError("tuning rules: 'redis.budget.overhead_factor' must be at least 1")
    base = budget.integer("base_mib")
    total = math.ceil(maxmemory * factor) + base
    log.add("redis.budget_mib", f"maxmemory {maxmemory} x {factor:g} + {base} MiB")
    return RedisTuning(
        maxmemory_mib=maxmemory,
        maxmemory_policy=rules.text("maxmemory_policy", REDIS_POLICIES),
        timeout_s=rules.integer("timeout_s"),
        tcp_keepalive_s=rules.integer("tcp_keepalive_s"),
        databases=rules.integer("databases", 1),
        budget_mib=total,
    )
