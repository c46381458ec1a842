"""installer.database.dump against fake mariadb/mariadb-dump commands and the real zstd."""

from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path

import pytest

from installer.database import dump
from installer.runner import CLEAN_PATH, SubprocessRunner

pytestmark = pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")

FAKE_DUMP = """#!/usr/bin/env python3
import os, sys
mode = os.environ.get("FAKE_DUMP", "ok")
db = sys.argv[-1]
out = sys.stdout
out.write("-- MariaDB dump of " + db + "\\n")
for i in range(int(os.environ.get("FAKE_ROWS", "100"))):
    out.write("INSERT INTO `t` VALUES (%d,'row %d');\\n" % (i, i))
if mode == "fail":
    sys.stderr.write("mariadb-dump: Got error: 2013: Lost connection\\n")
    sys.exit(2)
if mode != "nomarker":
    out.write("-- Dump completed on 2026-01-01  1:15:00\\n")
"""

FAKE_MARIADB = """#!/usr/bin/env python3
import os, sys
state = os.environ["FAKE_STATE"]
args = sys.argv[1:]
if "-e" in args:
    query = args[args.index("-e") + 1]
    with open(os.path.join(state, "queries"), "a") as log:
        log.write(query + "\\n")
    if query == "SHOW DATABASES":
        print("\\n".join(os.environ.get("FAKE_DBS", "site").split()))
    elif query == "SELECT VERSION()":
        print("10.11.6-MariaDB-0+deb12u1")
    elif "SUM(DATA_LENGTH" in query:
        print(os.environ.get("FAKE_DATA_BYTES", "1000"))
    elif "information_schema.TABLES" in query:
        print("t")
    elif "COUNT(*) FROM `" in query:
        print("t\\t" + os.environ.get("FAKE_COUNT", "100"))
    elif "information_schema.SCHEMATA" in query:
        print("1" if os.environ.get("FAKE_EXISTS") else "0")
    sys.exit(0)
data = sys.stdin.read()
dbs = [a.split("=", 1)[1] for a in args if a.startswith("--database=")]
if not dbs:  # statements on stdin (installer.database.sql.execute)
    with open(os.path.join(state, "queries"), "a") as log:
        log.write(data)
    sys.exit(0)
db = dbs[0]
with open(os.path.join(state, "restored-" + db), "w") as out:
    out.write(data)
sys.exit(1 if "BREAK" in data else 0)
"""


@pytest.fixture
def runner(tmp_path: Path) -> SubprocessRunner:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("mariadb-dump", FAKE_DUMP), ("mariadb", FAKE_MARIADB)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    return SubprocessRunner(base_env={"PATH": f"{bin_dir}:{CLEAN_PATH}", "LANG": "C.UTF-8",
                                      "FAKE_STATE": str(state), "HOME": str(tmp_path)})


def test_dump_writes_a_0600_file_that_verifies(runner: SubprocessRunner, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "site.sql.zst"
    record = dump.dump_database(runner, "site", dest, threads=2)
    assert dest.is_file()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert record.size == dest.stat().st_size
    assert record.sha256 == dump.sha256_of(dest)
    assert record.rows == {"t": 100}
    assert record.database == "site" and record.file == "site.sql.zst"
    assert dump.verify_dump(runner, dest, record) is None
    assert list(dest.parent.iterdir()) == [dest]
    again = dump.DumpRecord.from_dict(record.as_dict())
    assert again == record


def test_failed_dump_leaves_no_file(runner: SubprocessRunner, tmp_path: Path) -> None:
    runner.base_env["FAKE_DUMP"] = "fail"
    dest = tmp_path / "out" / "site.sql.zst"
    with pytest.raises(dump.BackupError, match=r"mariadb-dump of site exited 2: .*Lost connection"):
        dump.dump_database(runner, "site", dest)
    assert list(dest.parent.iterdir()) == []


def test_missing_command_is_a_backup_error(tmp_path: Path) -> None:
    runner = SubprocessRunner(base_env={"PATH": str(tmp_path)})
    with pytest.raises(dump.BackupError):
        dump.dump_database(runner, "site", tmp_path / "x.sql.zst")


def test_verify_finds_each_problem(runner: SubprocessRunner, tmp_path: Path) -> None:
    dest = tmp_path / "site.sql.zst"
    record = dump.dump_database(runner, "site", dest)
    # A changed byte: the checksum no longer matches.
    data = bytearray(dest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dest.write_bytes(bytes(data))
    assert "sha256" in (dump.verify_dump(runner, dest, record) or "")
    # Truncated: the size differs.
    dest.write_bytes(bytes(data[:-10]))
    assert "bytes, the manifest says" in (dump.verify_dump(runner, dest, record) or "")
    # Checksum matches but the content is not zstd.
    dest.write_bytes(b"not zstd at all")
    fake = dump.DumpRecord.from_dict({**record.as_dict(), "size": 15,
                                      "sha256": dump.sha256_of(dest)})
    assert "does not decompress" in (dump.verify_dump(runner, dest, fake) or "")
    dest.unlink()
    assert "missing" in (dump.verify_dump(runner, dest, record) or "")


def test_verify_wants_the_completion_marker(runner: SubprocessRunner, tmp_path: Path) -> None:
    runner.base_env["FAKE_DUMP"] = "nomarker"
    dest = tmp_path / "site.sql.zst"
    record = dump.dump_database(runner, "site", dest)
    assert "no completion marker" in (dump.verify_dump(runner, dest, record) or "")


def test_restore_creates_the_database_and_loads_the_dump(runner: SubprocessRunner,
                                                         tmp_path: Path) -> None:
    dest = tmp_path / "site.sql.zst"
    dump.dump_database(runner, "site", dest)
    dump.restore_database(runner, dest, "copy`db")
    state = Path(runner.base_env["FAKE_STATE"])
    assert "CREATE DATABASE IF NOT EXISTS `copy``db`" in (state / "queries").read_text()
    restored = (state / "restored-copy`db").read_text()
    assert restored.startswith("-- MariaDB dump of site\n")
    assert restored.rstrip().endswith("-- Dump completed on 2026-01-01  1:15:00")


def test_restore_reports_a_failing_load(runner: SubprocessRunner, tmp_path: Path) -> None:
    source = tmp_path / "bad.sql.zst"
    plain = tmp_path / "bad.sql"
    plain.write_text("BREAK\n")
    SubprocessRunner().run(["zstd", "-q", "-o", str(source), str(plain)])
    with pytest.raises(dump.BackupError, match=r"loading bad\.sql\.zst into site failed"):
        dump.restore_database(runner, source, "site")
    with pytest.raises(dump.BackupError, match="no such dump"):
        dump.restore_database(runner, tmp_path / "none.sql.zst", "site")


def test_dump_stopped_midway_leaves_no_file(runner: SubprocessRunner, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    runner.base_env["FAKE_ROWS"] = "200000"
    dest = tmp_path / "site.sql.zst"
    calls = {"n": 0}

    class Boom(Exception):
        pass

    original = hashlib.sha256

    class Hash:
        def __init__(self) -> None:
            self.inner = original()

        def update(self, chunk: bytes) -> None:
            calls["n"] += 1
            raise Boom()

        def hexdigest(self) -> str:
            return str(self.inner.hexdigest())

    monkeypatch.setattr(hashlib, "sha256", Hash)
    with pytest.raises(Boom):
        dump.dump_database(runner, "site", dest)
    assert calls["n"] == 1
    assert list(tmp_path.glob("*site*")) == []
