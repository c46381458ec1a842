"""The careless operator's corpus (tests/unit/bad_inputs/cases.yml): every bad input to the
real CLIs under --root is one `error:` line on stderr with the right exit code, and leaves
the tree exactly as it was, special files included."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.test_cli import run

CORPUS = Path(__file__).parent / "bad_inputs"
CASES: list[dict[str, Any]] = yaml.safe_load((CORPUS / "cases.yml").read_text(encoding="utf-8"))
CLASSES = {"config", "value", "name", "git", "usage"}
MAX_LINE = 600  # an error echoes no value whole

PLACEHOLDERS = {
    "long": "a" * 100_000,
    "digits": "9" * 5000,
    "mb": "a" * (1 << 20),
    "MB": "A" * (1 << 20),
}


def fill(text: str, root: Path, inputs: Path) -> str:
    values = {**PLACEHOLDERS, "root": str(root), "in": str(inputs)}
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def digest(root: Path) -> str:
    """Every entry under `root`: path, type and mode, owner, inode and mtime, the content of
    a file, the target of a link. A FIFO or socket is looked at, never opened."""
    hasher = hashlib.sha256()
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted([*dirs, *files]):
            path = os.path.join(top, name)
            info = os.lstat(path)
            hasher.update(f"{os.path.relpath(path, root)}\0{info.st_mode:o}\0{info.st_uid}:"
                          f"{info.st_gid}\0".encode())
            if stat.S_ISREG(info.st_mode):
                hasher.update(f"{info.st_ino}\0{info.st_mtime_ns}\0".encode())
                hasher.update(hashlib.sha256(Path(path).read_bytes()).digest())
            elif stat.S_ISLNK(info.st_mode):
                hasher.update(os.readlink(path).encode())
    return hasher.hexdigest()


def kind(path: str) -> tuple[int, int]:
    info = os.lstat(path)
    return stat.S_IFMT(info.st_mode), info.st_rdev


def make(entry: dict[str, Any], root: Path, inputs: Path, keep: list[socket.socket]) -> str | None:
    """Make one setup entry; the path of a special file whose kind must survive, or None."""
    if "passwd" in entry or "group" in entry:
        which = "passwd" if "passwd" in entry else "group"
        path = root / "etc" / which
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(entry[which] + "\n")
        return None
    what = next(k for k in ("file", "fifo", "socket", "dir", "symlink") if k in entry)
    path = Path(fill(entry[what], root, inputs))
    assert root in path.parents, f"setup outside the tree: {path}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if what == "file":
        path.write_text(fill(entry["text"], root, inputs), encoding="utf-8")
        path.chmod(int(entry.get("mode", "0600"), 8))
        return None
    if what == "fifo":
        os.mkfifo(path, 0o600)
    elif what == "socket":
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        keep.append(server)
    elif what == "dir":
        path.mkdir(mode=0o700)
    else:
        path.symlink_to(fill(entry["to"], root, inputs))
    return str(path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installed machine with instance o1, platform d10 and site a.example.org."""
    root = tmp_path_factory.mktemp("careless")
    platform = tmp_path_factory.mktemp("careless-platform")
    (platform / "index.php").write_text("<?php echo 'hi';\n")
    (platform / "core/lib").mkdir(parents=True)
    (platform / "core/lib/Drupal.php").write_text("<?php\n")
    for tool, *args in (["barracuda", "install"],
                        ["octopus", "install", "o1", "--email", "ops@example.org"],
                        ["octopus", "platform", "add", "o1", "d10", "--path", str(platform)],
                        ["octopus", "site", "add", "o1", "a.example.org", "--platform", "d10"]):
        result = run(tool, *args, "--root", str(root), "--yes")
        assert result.returncode == 0, result.stderr
    return root


def test_the_corpus_covers_every_class() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert {case["class"] for case in CASES} == CLASSES
    assert len(CASES) >= 60
    for case in CASES:
        assert set(case) <= {"id", "class", "run", "exit", "says", "setup", "fresh", "env",
                             "special"}, case["id"]
        assert case["exit"] in (2, 3), case["id"]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case: dict[str, Any], shared: Path,
                                                   tmp_path: Path) -> None:
    root = tmp_path / "root" if case.get("fresh") else shared
    root.mkdir(exist_ok=True)
    inputs = root / "inputs" / case["id"]
    inputs.mkdir(parents=True, exist_ok=True)
    sockets: list[socket.socket] = []
    try:
        specials = [p for p in (make(e, root, inputs, sockets) for e in case.get("setup", []))
                    if p] + list(case.get("special", []))
        kinds = {path: kind(path) for path in specials}
        before = digest(root)
        tool, *args = case["run"]
        env = {k: fill(v, root, inputs) for k, v in case.get("env", {}).items()}
        result = run(tool, *(fill(a, root, inputs) for a in args), env=env)
        after = digest(root)
    finally:
        for server in sockets:
            server.close()
    lines = result.stderr.splitlines()
    assert result.returncode == case["exit"], result.stderr[:2000]
    assert len(lines) == 1, result.stderr[:2000]
    assert lines[0].startswith("error: ") and case["says"] in lines[0], lines[0][:2000]
    assert len(lines[0]) <= MAX_LINE, lines[0][:2000]
    assert result.stdout == ""
    assert after == before, "the tree changed"
    assert {path: kind(path) for path in specials} == kinds
    if case.get("fresh"):
        shutil.rmtree(root)


def test_boa_keys_of_an_instance_config_are_named_in_one_warning(shared: Path,
                                                                 tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(shared, root, symlinks=True, ignore=shutil.ignore_patterns("inputs"))
    cnf = root / "root/.o1.octopus.cnf"
    cnf.write_text(cnf.read_text() + '_USER="o1"\n_DOMAIN="o1.example.org"\n')
    result = run("octopus", "up-stable", "o1", "--root", str(root), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"warning: {cnf}: BOA keys octopus does not use (ignored): _USER _DOMAIN")


def test_the_run_logs_of_the_shared_tree_say_what_changed(shared: Path) -> None:
    logs = sorted((shared / "var/log/barracuda").glob("octopus-site-add-o1-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    record = yaml.safe_load((shared / "data/disk/o1/config/sites/a.example.org.yml").read_text())
    assert record["db_password"] not in text
    assert "/data/disk/o1/config/sites/a.example.org.yml: changed: create: " in text
    assert "changed, " in text.splitlines()[-1]
    versions = (shared / "var/log/barracuda/versions.log").read_text().splitlines()
    assert len(versions) == 4  # four runs, each changed something
