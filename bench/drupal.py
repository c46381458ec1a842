"""bench/drupal: a real Drupal 7 site on our stack against the same site on Debian's stock one.

Two fresh boxes of one release (default bookworm, systemd), set up side by side:
  tuned  ./install.sh --yes, `octopus install o1`, the pressflow-7.101 fixture as a platform
         and `octopus site add --install`; then BENCH_NODES articles (with comments) made
         through Drupal's own API, so the front page lists ten teasers from the database
  stock  the same packages (Nginx, MariaDB, PHP-FPM and the same PHP extensions) with
         Debian's default configuration: the default `www` pool, Debian's default site
         turned into a minimal Drupal server block; the same code (the fixture), the same
         database (a dump of the tuned site's, sessions included) and hash salt
Debian's `wrk` (installed in each box by this bench, never by the product) then loads the
front page on loopback of each box, alternating tuned and stock, `--rounds` times:
  anon    anonymous, Drupal's page cache off (as installed) and the Speed Booster bypassed
          (a NoCacheID cookie, sent to both stacks): PHP builds every page
  user    logged in as the site's admin (the same session cookie on both stacks)
  hit     anonymous, every answer a Speed Booster HIT (tuned only)
  static  the bytes of the cached front page, served by Nginx as a file from the site's
          files directory
Medians of the rounds: req/s, p50 and p99 latency (wrk --latency), CPU per request of the
whole box (its cgroup's usage_usec; wrk, run through nsenter, stays in the host's
cgroup), and the ratios tuned/stock for anon and user, and hit/static. Needs root (it boots
boxes). Absolute figures move with whatever else the host runs; the ratios come from
interleaved runs of one invocation.

    .venv/bin/python -m bench.drupal [--release bookworm] [--kind systemd] [--rounds 3]
                                     [--seconds 10] [--connections 16] [--json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.box.boxes import Box, start_box
from tests.box.fixtures import fixture_tree

REPO = Path(__file__).resolve().parents[1]
FIXTURE = "pressflow-7.101"
DOMAIN = "bench.example.org"
NODES = 50
# The load must not make the monitor shed or raise the crawler shield (bench/nginx does the
# same): this measures the web path, not the monitor.
CNF = "_CPU_SPIDER_RATIO=90\n_CPU_MAX_RATIO=95\n_CPU_CRIT_RATIO=99\n"
PLATFORM = "/data/disk/o1/platforms/d7"
STOCK_ROOT = "/var/www/d7"
STATIC = "bench-front.html"

# Made with Drupal's API as the instance's shell user: articles promoted to the front page,
# a few with comments.
CONTENT_PHP = r"""<?php
define('DRUPAL_ROOT', getcwd());
$_SERVER['HTTP_HOST'] = $argv[1];
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['REQUEST_METHOD'] = 'GET';
require_once DRUPAL_ROOT . '/includes/bootstrap.inc';
drupal_bootstrap(DRUPAL_BOOTSTRAP_FULL);
$words = explode(' ', 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod '
  . 'tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud');
for ($i = 1; $i <= (int) $argv[2]; $i++) {
  $text = '';
  for ($p = 0; $p < 4; $p++) {
    $text .= '<p>';
    for ($w = 0; $w < 60; $w++) {
      $text .= $words[($i * 7 + $p * 13 + $w) % count($words)] . ' ';
    }
    $text .= "</p>\n";
  }
  $node = new stdClass();
  $node->type = 'article';
  node_object_prepare($node);
  $node->title = "Bench article $i";
  $node->language = LANGUAGE_NONE;
  $node->uid = 1;
  $node->status = 1;
  $node->promote = 1;
  $node->body[LANGUAGE_NONE][0] = ['value' => $text, 'summary' => '', 'format' => 'filtered_html'];
  node_save($node);
  for ($c = 0; $c < ($i % 5 === 0 ? 3 : 0); $c++) {
    $comment = (object) ['nid' => $node->nid, 'cid' => 0, 'pid' => 0, 'uid' => 1,
      'status' => COMMENT_PUBLISHED, 'subject' => "Comment $c on $i",
      'language' => LANGUAGE_NONE, 'comment_body' => [LANGUAGE_NONE => [
        ['value' => "A comment $c.", 'format' => 'filtered_html']]]];
    comment_save($comment);
  }
}
echo db_query('SELECT COUNT(*) FROM {node}')->fetchField(), "\n";
"""

STOCK_SETTINGS = """<?php
$databases['default']['default'] = array(
  'driver' => 'mysql', 'database' => {database}, 'username' => {username},
  'password' => {password}, 'host' => {host}, 'port' => {port}, 'prefix' => '',
  'charset' => 'utf8mb4', 'collation' => 'utf8mb4_general_ci',
);
$drupal_hash_salt = {salt};
$conf['file_public_path'] = {public};
$conf['file_temporary_path'] = '/tmp';
$conf['cron_safe_threshold'] = 0;
"""

# Debian's default site (sites-available/default) with the root and the front controller a
# Drupal guide adds; the rest is the package's nginx.conf and snippets, untouched.
STOCK_SITE = """server {{
    listen 80 default_server;
    root {root};
    index index.php index.html;
    server_name _;
    location / {{
        try_files $uri $uri/ /index.php?$query_string;
    }}
    location ~ \\.php$ {{
        include snippets/fastcgi-php.conf;
        fastcgi_pass unix:/run/php/php{php}-fpm.sock;
    }}
}}
"""


def php_str(value: object) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def php_packages(release: str) -> tuple[str, list[str]]:
    """The PHP version and packages our install uses for `release` (profiles/distros.yml)."""
    data = yaml.safe_load((REPO / "profiles/distros.yml").read_text())["releases"][release]
    version = str(data["php"]["default"])
    return version, [name.replace("X.Y", version) for name in data["php"]["packages"]]


# ------------------------------------------------------------------------------ setup


def setup_tuned(box: Box, tree: Path) -> dict[str, Any]:
    box.write_file("/root/.barracuda.cnf", CNF, 0o600)
    box.install_project(REPO)
    box.run("apt-get install -y -q wrk >/dev/null")
    box.copy_in(tree, "/root/d7")
    box.run(["sh", "-c", f"echo '127.0.0.1 {DOMAIN}' >> /etc/hosts"])
    box.run(["octopus", "install", "o1", "--email", f"ops@{DOMAIN}", "--yes"])
    box.run(["octopus", "platform", "add", "o1", "d7", "--path", "/root/d7", "--yes"])
    box.run(["octopus", "site", "add", "o1", DOMAIN, "--platform", "d7", "--install",
             "--site-name", "Bench site", "--yes"])
    box.write_file("/tmp/bench-content.php", CONTENT_PHP)
    count = box.run(f"cd {PLATFORM} && runuser -u o1 -- php /tmp/bench-content.php {DOMAIN} "
                    f"{NODES}").stdout.split()[-1]
    record = yaml.safe_load(box.read_file(f"/data/disk/o1/config/sites/{DOMAIN}.yml"))
    credentials = json.loads(box.run(
        ["php", "-r", f"echo json_encode(include '/data/disk/o1/secrets/{DOMAIN}.php');"]
    ).stdout)["db"]
    public = f"sites/{DOMAIN}/files"
    # A session of the site's admin, from a one-time login link.
    link = box.run(["octopus", "site", "login", "o1", DOMAIN]).stdout.strip()
    path = re.sub(r"^https?://[^/]+", "", link)
    box.run(["curl", "-s", "-o", "/dev/null", "-c", "/root/jar", "-H", f"Host: {DOMAIN}",
             f"http://127.0.0.1{path}"])
    jar = box.read_file("/root/jar")
    cookie = next(f"{f[5]}={f[6]}" for f in (line.split("\t") for line in jar.splitlines())
                  if len(f) == 7 and f[5].startswith("SESS"))
    return {"nodes": int(count), "record": record, "db": credentials, "public": public,
            "cookie": cookie}


def setup_stock(box: Box, tree: Path, release: str) -> str:
    php, packages = php_packages(release)
    box.run("apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install "
            "-y -q nginx mariadb-server wrk curl " + " ".join(packages) + " >/dev/null",
            timeout=1800)
    box.copy_in(tree, STOCK_ROOT)
    box.write_file("/etc/nginx/sites-available/default", STOCK_SITE.format(root=STOCK_ROOT,
                                                                          php=php))
    box.run("nginx -t && (systemctl reload nginx || service nginx reload)")
    return php


def copy_site(tuned: Box, stock: Box, site: dict[str, Any]) -> None:
    """The tuned site's database (sessions included) and settings into the stock box."""
    db = site["db"]
    tuned.run(f"mariadb-dump --single-transaction {db['database']} > /root/site.sql")
    shutil.copyfile(tuned.root / "root/site.sql", stock.root / "root/site.sql")
    grants = "".join(
        f"CREATE USER '{db['username']}'@'{host}' IDENTIFIED BY '{db['password']}'; "
        f"GRANT ALL ON `{db['database']}`.* TO '{db['username']}'@'{host}'; "
        for host in ("localhost", "127.0.0.1"))
    stock.run(["mariadb", "-e", f"CREATE DATABASE `{db['database']}`; {grants}"])
    stock.run(f"mariadb {db['database']} < /root/site.sql")
    site_dir = f"{STOCK_ROOT}/sites/{DOMAIN}"
    stock.run(["install", "-d", "-o", "www-data", "-g", "www-data", f"{site_dir}/files"])
    stock.write_file(f"{site_dir}/settings.php", STOCK_SETTINGS.format(
        database=php_str(db["database"]), username=php_str(db["username"]),
        password=php_str(db["password"]), host=php_str(db["host"]), port=int(db["port"]),
        salt=php_str(site["record"]["hash_salt"]), public=php_str(site["public"])), 0o444)


def body(box: Box, path: str, *headers: str) -> tuple[str, str]:
    """(headers, body) of GET `path` on loopback with the bench's Host."""
    argv = ["curl", "-s", "-D", "/root/h", "-o", "/root/b", "-H", f"Host: {DOMAIN}"]
    for header in headers:
        argv += ["-H", header]
    box.run([*argv, f"http://127.0.0.1{path}"])
    return box.read_file("/root/h"), box.read_file("/root/b")


def check_pages(tuned: Box, stock: Box, site: dict[str, Any]) -> dict[str, int]:
    """Both stacks serve the same site: ten teasers to anonymous visitors, the admin's
    page to the session; the cached page is a HIT; the static copy is the same bytes."""
    sizes = {}
    for name, box in (("tuned", tuned), ("stock", stock)):
        for _ in range(3):  # warm the OPcache and Drupal's caches
            body(box, "/", "Cookie: NoCacheID=1")
        head, page = body(box, "/", "Cookie: NoCacheID=1")
        if " 200 " not in head.splitlines()[0] or page.count('class="node ') < 10:
            raise RuntimeError(f"{name}: the front page is not the site's:\n{head}{page[:2000]}")
        _, page = body(box, "/", f"Cookie: {site['cookie']}")
        if "user/logout" not in page:
            raise RuntimeError(f"{name}: the session cookie is not logged in:\n{page[:2000]}")
        sizes[name] = len(page.encode())
    body(tuned, "/")
    head, cached = body(tuned, "/")
    if not re.search(r"^X-Speed-Cache: HIT", head, re.M | re.I):
        raise RuntimeError(f"tuned: the front page is not a Speed Booster HIT:\n{head}")
    for box, root in ((tuned, PLATFORM), (stock, STOCK_ROOT)):
        box.write_file(f"{root}/{site['public']}/{STATIC}", cached)
        _, served = body(box, f"/{site['public']}/{STATIC}")
        if served != cached:
            raise RuntimeError("the static copy is not the cached page's bytes")
    sizes["cached"] = len(cached.encode())
    return sizes


# ------------------------------------------------------------------------------ measure


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def cpu_usec(box: Box) -> int | None:
    """CPU the box's processes used so far (its cgroup v2 cpu.stat), or None (sysv boxes
    have no cgroup of their own)."""
    for root in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        stat = root / f"nspawn-{box.name}" / "cpu.stat"
        if stat.exists():
            return int(re.search(r"usage_usec (\d+)", stat.read_text()).group(1))  # type: ignore[union-attr]
    return None


def wrk(box: Box, path: str, seconds: int, connections: int,
        headers: tuple[str, ...] = ()) -> dict[str, Any]:
    argv = ["timeout", str(seconds + 30), "wrk", "-t", "2", "-c", str(connections), "-d",
            f"{seconds}s", "--timeout", "10s", "--latency", "-H", f"Host: {DOMAIN}"]
    for header in headers:
        argv += ["-H", header]
    before = cpu_usec(box)
    out = box.run([*argv, f"http://127.0.0.1{path}"]).stdout
    after = cpu_usec(box)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if not (rps and total and p50 and p99):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        out)
    requests = int(total.group(1))
    return {"rps": float(rps.group(1)), "requests": requests,
            "p50_ms": _ms(*p50.groups()), "p99_ms": _ms(*p99.groups()),
            "cpu_ms": (after - before) / 1000 / requests
            if before is not None and after is not None and requests else None,
            "errors": (int(non2xx.group(1)) if non2xx else 0)
            + (sum(int(n) for n in sockets.groups()) if sockets else 0)}


def scenarios(site: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...], bool]]:
    """(name, path, headers, also on stock)."""
    static = f"/{site['public']}/{STATIC}"
    return [("anon", "/", ("Cookie: NoCacheID=1",), True),
            ("user", "/", (f"Cookie: {site['cookie']}",), True),
            ("hit", "/", (), False),
            ("static", static, (), True)]


def measure(tuned: Box, stock: Box, site: dict[str, Any], rounds: int, seconds: int,
            connections: int) -> dict[str, dict[str, list[dict[str, Any]]]]:
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {"tuned": {}, "stock": {}}
    for number in range(rounds):
        for name, path, headers, on_stock in scenarios(site):
            # Alternate which stack goes first, so neither always follows the other.
            order = [("tuned", tuned), ("stock", stock)] if on_stock else [("tuned", tuned)]
            if number % 2:
                order.reverse()
            for stack, box in order:
                result = wrk(box, path, seconds, connections, headers)
                runs[stack].setdefault(name, []).append(result)
                print(f"round {number + 1} {stack:<5} {name:<6} {result['rps']:9.1f} req/s "
                      f"p50 {result['p50_ms']:7.1f} ms p99 {result['p99_ms']:7.1f} ms",
                      file=sys.stderr, flush=True)
    return runs


def medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("rps", "p50_ms", "p99_ms", "cpu_ms"):
        values = [r[key] for r in results if r[key] is not None]
        out[key] = statistics.median(values) if values else None
    out["errors"] = sum(r["errors"] for r in results)
    return out


def summary(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    table = {stack: {name: medians(rs) for name, rs in by.items()} for stack, by in runs.items()}
    t, s = table["tuned"], table["stock"]
    ratios = {f"{name} tuned/stock": t[name]["rps"] / s[name]["rps"]
              for name in ("anon", "user", "static")}
    ratios["hit/static (tuned)"] = t["hit"]["rps"] / t["static"]["rps"]
    ratios["hit/anon (tuned)"] = t["hit"]["rps"] / t["anon"]["rps"]
    return {"medians": table, "ratios": ratios}


def top_cpu(box: Box) -> str:
    """The box's processes that used the most CPU since it started (name: CPU seconds)."""
    out = box.run("ps -eo comm=,times= | awk '{t[$1]+=$2} END {for (c in t) print t[c], c}' "
                  "| sort -rn | head -6").stdout
    return ", ".join(f"{name} {seconds}s" for seconds, name in
                     (line.split(None, 1) for line in out.splitlines()))


def startup(box: Box, repeat: int = 5) -> dict[str, float]:
    """Median wall seconds of `barracuda version`, `--help` and a no-op converge in the
    tuned box (the start-up goals of issue 18), measured by the box's own clock."""
    commands = {"version": "barracuda version", "help": "barracuda --help",
                "noop install": "barracuda install --yes --quiet"}
    times = {}
    for name, command in commands.items():
        out = box.run(f"for i in $(seq {repeat}); do s=$(date +%s%N); {command} >/dev/null; "
                      "e=$(date +%s%N); echo $(((e - s) / 1000000)); done").stdout
        times[name] = statistics.median(int(line) for line in out.split()) / 1000
    return times


def pools(box: Box) -> str:
    return box.run("grep -h '^pm' /etc/php/*/fpm/pool.d/*.conf | sort | uniq -c | "
                   "tr -s ' ' | paste -sd';'").stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="bookworm", choices=["bookworm"])
    parser.add_argument("--kind", default="systemd", choices=["systemd", "sysv"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tree = fixture_tree(FIXTURE)
    started = time.monotonic()
    boxes: list[Box] = []
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            future_t = pool.submit(start_box, args.kind, args.release)
            future_s = pool.submit(start_box, args.kind, args.release)
            tuned, stock = future_t.result(), future_s.result()
            boxes += [tuned, stock]
            site_f = pool.submit(setup_tuned, tuned, tree)
            stock_f = pool.submit(setup_stock, stock, tree, args.release)
            site, _php = site_f.result(), stock_f.result()
        copy_site(tuned, stock, site)
        sizes = check_pages(tuned, stock, site)
        setup_s = time.monotonic() - started
        runs = measure(tuned, stock, site, args.rounds, args.seconds, args.connections)
        report = {"box": f"{args.kind}-{args.release}", "cpus": tuned.run("nproc").stdout.strip(),
                  "rounds": args.rounds, "seconds": args.seconds,
                  "connections": args.connections, "nodes": site["nodes"], "bytes": sizes,
                  "pools": {"tuned": pools(tuned), "stock": pools(stock)},
                  "top_cpu": {"tuned": top_cpu(tuned), "stock": top_cpu(stock)},
                  "startup_s": startup(tuned),
                  "setup_s": round(setup_s), **summary(runs), "runs": runs}
    finally:
        for box in boxes:
            box.stop()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"bench/drupal {time.strftime('%Y-%m-%d')} {report['box']} ({report['cpus']} CPUs), "
          f"Drupal 7.101, {report['nodes']} nodes; wrk -t2 -c{args.connections} "
          f"-d{args.seconds}s, {args.rounds} alternating rounds, medians")
    print(f"front page bytes: {sizes}; pools: tuned {report['pools']['tuned']}; "
          f"stock {report['pools']['stock']}")
    print("start-up in the tuned box (median wall s): " + ", ".join(
        f"{k} {v:.2f}" for k, v in report["startup_s"].items()))
    print(f"most CPU (s) since boot: tuned {report['top_cpu']['tuned']}; "
          f"stock {report['top_cpu']['stock']}")
    print(f"{'stack':<6} {'page':<7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'CPU ms/req':>10} {'errors':>7}")
    for stack, by in report["medians"].items():
        for name, m in by.items():
            cpu = f"{m['cpu_ms']:10.2f}" if m["cpu_ms"] is not None else f"{'-':>10}"
            print(f"{stack:<6} {name:<7} {m['rps']:9.1f} {m['p50_ms']:8.1f} {m['p99_ms']:8.1f} "
                  f"{cpu} {m['errors']:7}")
    print("ratios (req/s): " + ", ".join(f"{k} {v:.2f}x" for k, v in report["ratios"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
