"""bench/backup: what does barracuda's database backup cost next to a plain pipeline?

In one fresh installed box (default bookworm, systemd), on a database of --mib MiB (text that
compresses like a site's tables, plus some random bytes), from one run, ROUNDS times each,
alternating, medians reported:
  plain     mariadb-dump --single-transaction ... DB | zstd -T0 -3 > file   (a shell pipeline)
  dump      barracuda's dump_database (same options, sha256 while writing, 0600 file)
  run       `barracuda backup run` (every database, manifest, verification, rotation)
  restore   `barracuda backup restore DB --as COPY` (verify, then zstd -dc | mariadb)
  load      plain zstd -dc file | mariadb COPY
and prints dump/plain (the ratio the issue asks for) and restore/load. Needs root.

    .venv/bin/python -m bench.backup [--mib 300] [--rounds 3] [--release bookworm|trixie]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from tests.box.boxes import Box, start_box

REPO = Path(__file__).resolve().parents[1]
DUMP = ("mariadb-dump --single-transaction --routines --triggers --events --quick --hex-blob "
        "--max-allowed-packet=1G --default-character-set=utf8mb4")
OURS = ("/opt/barracuda/bin/python -c 'import sys; from pathlib import Path; "
        "from installer.agents.backup.dump import dump_database; "
        "from installer.runner import SubprocessRunner; "
        "r = dump_database(SubprocessRunner(), \"bench\", Path(sys.argv[1])); "
        "print(r.size)' /root/ours.sql.zst")


def make_data(box: Box, mib: int) -> None:
    """About `mib` MiB of table data: ~1 KiB rows, mostly text with some random bytes."""
    rows = mib * 1024
    box.run(["mariadb", "--batch"], input=f"""
CREATE DATABASE bench CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE bench;
CREATE TABLE bench.node (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(255),
  body MEDIUMTEXT, hash CHAR(64), created DATETIME, data VARBINARY(128)) ENGINE=InnoDB;
INSERT INTO bench.node (title, body, hash, created, data)
  SELECT CONCAT('Node title number ', seq),
         CONCAT(REPEAT(CONCAT('Lorem ipsum dolor sit amet ', seq % 97, ' consectetur '), 12),
                SHA2(seq, 256), ' ', SHA2(seq + 1, 256)),
         SHA2(seq * 7, 256), NOW() - INTERVAL seq MINUTE, RANDOM_BYTES(64)
  FROM seq_1_to_{rows};
""", timeout=3600)


def timed(box: Box, cmd: str) -> float:
    started = time.monotonic()
    box.run(cmd, timeout=3600)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mib", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--release", default="bookworm", choices=["bookworm", "trixie"])
    parser.add_argument("--kind", default="systemd", choices=["systemd", "sysv"])
    args = parser.parse_args()

    box = start_box(args.kind, args.release)
    times: dict[str, list[float]] = {k: [] for k in ("plain", "dump", "run", "restore", "load")}
    try:
        box.install_project(REPO)
        make_data(box, args.mib)
        box.run(["mariadb", "-e", "ANALYZE TABLE bench.node"])  # fresh size statistics
        data = box.run(["mariadb", "-N", "-e", "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM "
                        "information_schema.TABLES WHERE TABLE_SCHEMA='bench'"]).stdout
        for _ in range(args.rounds):
            times["plain"].append(
                timed(box, f"{DUMP} bench | zstd -q -T0 -3 > /root/plain.sql.zst"))
            times["dump"].append(timed(box, OURS))
            times["run"].append(timed(box, "barracuda backup run -q"))
            box.run(["mariadb", "-e", "DROP DATABASE IF EXISTS bench_copy"])
            times["restore"].append(
                timed(box, "barracuda backup restore bench --as bench_copy -q"))
            box.run(["mariadb", "-e", "DROP DATABASE IF EXISTS bench_copy; "
                                      "CREATE DATABASE bench_copy"])
            times["load"].append(timed(box, "zstd -dc /root/plain.sql.zst | mariadb bench_copy"))
        plain_size = int(box.run(["stat", "-c", "%s", "/root/plain.sql.zst"]).stdout)
        ours_size = int(box.run(["stat", "-c", "%s", "/root/ours.sql.zst"]).stdout)
        raw_size = int(box.run("zstd -dc /root/plain.sql.zst | wc -c").stdout)
    finally:
        box.stop()

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"bench/backup {time.strftime('%Y-%m-%d')} {args.kind}-{args.release} on "
          f"{platform.node()} ({platform.machine()}), {int(data) / (1 << 20):.0f} MiB of table "
          f"data, a {raw_size / (1 << 20):.0f} MiB dump, median of {args.rounds}")
    mib = 1 << 20
    print(f"  plain   mariadb-dump | zstd       {med['plain']:7.2f} s   "
          f"{plain_size / mib:7.1f} MiB")
    print(f"  dump    dump_database             {med['dump']:7.2f} s   {ours_size / mib:7.1f} MiB"
          f"   {med['dump'] / med['plain']:.2f} x plain")
    print(f"  run     barracuda backup run      {med['run']:7.2f} s   (all databases, verified)")
    print(f"  load    zstd -dc | mariadb        {med['load']:7.2f} s")
    print(f"  restore barracuda backup restore  {med['restore']:7.2f} s"
          f"   {med['restore'] / med['load']:.2f} x load")


if __name__ == "__main__":
    main()
