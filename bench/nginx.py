"""bench/nginx: requests per second on loopback for an anonymous page, Speed Booster HIT
against uncached PHP, and our tuned configuration against the distribution's default one.

In one fresh box (default bookworm, systemd) installed with ./install.sh --yes, instance o1
gets the Drupal-like platform and site of tests/box/test_nginx.py. Debian's `wrk` (installed
in the box by this bench, never by the product) then loads one anonymous page for --seconds
with --connections connections, three ways:
  hit       our vhost, the page in the Speed Booster (every answer a HIT)
  php       our vhost, the same page with the cache bypassed (NoCacheID cookie): PHP each time
  stock     the distribution's own nginx.conf (extracted from the nginx-common package) with
            the PHP server block Debian's default site suggests, on port 8080, the same
            PHP-FPM pool and page
and prints the requests per second of each, the ratios hit/php, hit/stock and php/stock,
and the errors wrk saw (non-2xx answers, socket errors). Needs root (it boots a box).

    .venv/bin/python -m bench.nginx [--release bookworm|trixie] [--kind systemd|sysv]
                                    [--seconds 10] [--connections 32] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from tests.box.boxes import Box, start_box
from tests.box.test_nginx import CONFIG, DRUPAL, make_sites

REPO = Path(__file__).resolve().parents[1]
STOCK = "/root/stock-nginx"
STOCK_PORT = 8080
STOCK_BIN = "/usr/local/sbin/stocknginx"
PAGE = "/bench/page"


def wrk(box: Box, url: str, seconds: int, connections: int,
        headers: tuple[str, ...] = ()) -> dict[str, Any]:
    """One bounded wrk run: its requests per second and the errors it counted."""
    argv = ["timeout", str(seconds + 30), "wrk", "-t", "2", "-c", str(connections), "-d",
            f"{seconds}s", "--latency"]
    for header in headers:
        argv += ["-H", header]
    out = box.run([*argv, url]).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        out)
    if not rps or not total:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return {"rps": float(rps.group(1)), "requests": int(total.group(1)),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(int(n) for n in sockets.groups()) if sockets else 0}


def stock_nginx(box: Box, socket: str) -> None:
    """The distribution's nginx.conf, unchanged but for its includes and pid file, with the
    PHP server block of Debian's default site, serving the platform on STOCK_PORT."""
    box.run(f"rm -rf {STOCK} && mkdir -p {STOCK}/pkg && cd {STOCK}/pkg && "
            "apt-get download -q nginx-common >/dev/null && "
            f"dpkg-deb -x nginx-common_*.deb {STOCK}/pkg")
    conf = box.read_file(f"{STOCK}/pkg/etc/nginx/nginx.conf")
    conf = conf.replace("include /etc/nginx/conf.d/*.conf;", "")
    conf = conf.replace("include /etc/nginx/sites-enabled/*;", f"include {STOCK}/site.conf;")
    conf = re.sub(r"^pid .*;$", "pid /run/nginx-stock.pid;", conf, flags=re.M)
    box.write_file(f"{STOCK}/nginx.conf", conf)
    # Relative includes resolve next to the -c file: the package's own snippets go there.
    box.run(f"cp -r {STOCK}/pkg/etc/nginx/fastcgi.conf {STOCK}/pkg/etc/nginx/snippets {STOCK}/")
    box.write_file(f"{STOCK}/site.conf", f"""server {{
    listen {STOCK_PORT} default_server;
    root /data/disk/o1/platforms/d8;
    index index.php;
    location / {{
        try_files $uri $uri/ /index.php?$query_string;
    }}
    location ~ \\.php$ {{
        include {STOCK}/snippets/fastcgi-php.conf;
        fastcgi_pass unix:{socket};
    }}
}}
""")
    # Its own binary name: the monitor takes a second `nginx` master for a duplicate to kill.
    box.run(["cp", "/usr/sbin/nginx", STOCK_BIN])
    box.run([STOCK_BIN, "-t", "-c", f"{STOCK}/nginx.conf"])
    box.run([STOCK_BIN, "-c", f"{STOCK}/nginx.conf"])


def measure(box: Box, seconds: int, connections: int) -> dict[str, Any]:
    box.run("apt-get install -y -q wrk >/dev/null")
    make_sites(box)
    socket = box.run("ls /run/php/o1.*.sock").stdout.split()[0]
    stock_nginx(box, socket)
    try:
        ours = f"http://127.0.0.1{PAGE}"
        host = f"Host: {DRUPAL}"
        # Warm up: the first answers fill the cache and the opcache.
        box.run(["curl", "-sf", "-o", "/dev/null", "-H", host, ours])
        box.run(["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{STOCK_PORT}{PAGE}"])
        runs = {
            "hit": wrk(box, ours, seconds, connections, (host,)),
            "php": wrk(box, ours, seconds, connections, (host, "Cookie: NoCacheID=1")),
            "stock": wrk(box, f"http://127.0.0.1:{STOCK_PORT}{PAGE}", seconds, connections),
        }
        status = box.run(["curl", "-s", "-o", "/dev/null", "-D", "-", "-H", host, ours]).stdout
        runs["hit"]["cache_header"] = re.search(r"X-Speed-Cache: (\w+)", status,
                                                re.I).group(1)  # type: ignore[union-attr]
    finally:
        box.run([STOCK_BIN, "-c", f"{STOCK}/nginx.conf", "-s", "quit"], check=False)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="bookworm")
    parser.add_argument("--kind", default="systemd", choices=["systemd", "sysv"])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    box = start_box(args.kind, args.release)
    try:
        box.write_file("/root/.barracuda.cnf", CONFIG, 0o600)  # no shield from the load
        box.install_project(REPO)
        runs = measure(box, args.seconds, args.connections)
        cpus = box.run("nproc").stdout.strip()
    finally:
        box.stop()
    ratios = {"hit/php": runs["hit"]["rps"] / runs["php"]["rps"],
              "hit/stock": runs["hit"]["rps"] / runs["stock"]["rps"],
              "php/stock": runs["php"]["rps"] / runs["stock"]["rps"]}
    report = {"box": f"{args.kind}-{args.release}", "cpus": cpus, "seconds": args.seconds,
              "connections": args.connections, "runs": runs, "ratios": ratios}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"nginx bench on {report['box']} ({cpus} CPUs), wrk -t2 -c{args.connections} "
          f"-d{args.seconds}s on loopback, page {PAGE}")
    print(f"{'run':<8} {'req/s':>10} {'requests':>10} {'non-2xx':>8} {'sock err':>9}")
    for name, r in runs.items():
        print(f"{name:<8} {r['rps']:>10.0f} {r['requests']:>10} {r['non_2xx']:>8} "
              f"{r['socket_errors']:>9}")
    print("ratios: " + ", ".join(f"{k} {v:.1f}x" for k, v in ratios.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
