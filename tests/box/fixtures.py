"""Real Drupal codebases for the box tests, unpacked once and shared by every module and run.

The archives (`NAME.tar.zst`, each with one top folder; see the README beside them) live in

    $BARRACUDA_FIXTURES  or  <checkout>/../shared/fixtures

and are never part of the repository. `fixture_tree("pressflow-7.95")` returns the unpacked
top folder, under the box cache ($BARRACUDA_BOX_CACHE or /var/cache/barracuda-test):
unpacked once, under an fcntl lock (parallel modules wait for one unpack), into a temporary
name renamed into place at the end; the directory's name carries a digest of the archive, so
a changed archive is unpacked afresh. The tree is read-only test data: copy it into a box
(Box.copy_in), never change it in place.

When the archive is missing the test skips with one line saying where to put it; under CI
(env CI=true) its absence fails the test instead: CI must never go green by skipping.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from . import rootfs

REPO = Path(__file__).resolve().parents[2]
ENV = "BARRACUDA_FIXTURES"
_DONE = ".top"  # inside an unpacked dir: the name of its top folder, written last


class FixtureError(RuntimeError):
    """An archive could not be unpacked."""


def fixtures_dir() -> Path:
    return Path(os.environ.get(ENV) or REPO.parent / "shared" / "fixtures")


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(message: str) -> None:
    """Skip the test, or fail it under CI."""
    if under_ci():
        pytest.fail(f"{message} (CI=true: a missing fixture is a failure)", pytrace=False)
    pytest.skip(message)


def archive_path(name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad fixture name {name!r}: want e.g. 'pressflow-7.95'")
    return fixtures_dir() / f"{name}.tar.zst"


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


def _unpack(archive: Path, dest: Path) -> str:
    """Unpack `archive` into the new dir `dest`; the name of its single top folder."""
    dest.mkdir(parents=True)
    proc = subprocess.run(
        ["tar", "--no-same-owner", "-I", "zstd", "-C", str(dest), "-xf", str(archive)],
        capture_output=True, text=True, timeout=600, check=False,
        env={"PATH": rootfs.HOST_PATH, "LC_ALL": "C"})
    if proc.returncode != 0:
        raise FixtureError(f"unpacking {archive} failed (rc {proc.returncode}): "
                           f"{proc.stderr.strip()[-300:]}")
    tops = [entry.name for entry in dest.iterdir()]
    if len(tops) != 1 or not (dest / tops[0]).is_dir():
        raise FixtureError(f"{archive} must hold one top folder, not {sorted(tops)}")
    return tops[0]


def _ready(unpacked: Path) -> Path | None:
    try:
        top = (unpacked / _DONE).read_text().strip()
    except OSError:
        return None
    return unpacked / top if top and (unpacked / top).is_dir() else None


def fixture_tree(name: str) -> Path:
    """The unpacked top folder of the fixture `name` (skips, or fails under CI, if the
    archive is missing)."""
    archive = archive_path(name)
    if not archive.is_file():
        missing(f"Drupal fixture {archive.name} not found: put the codebases in "
                f"{fixtures_dir()} or point {ENV} at them")
    cache = rootfs.cache_dir() / "fixtures"
    unpacked = cache / f"{name}-{_digest(archive)}"
    found = _ready(unpacked)
    if found is not None:
        return found
    with rootfs.locked(cache / f".{name}.lock"):
        found = _ready(unpacked)  # unpacked by another process while we waited
        if found is not None:
            return found
        part = cache / f".{unpacked.name}.part-{os.getpid()}"
        shutil.rmtree(part, ignore_errors=True)
        shutil.rmtree(unpacked, ignore_errors=True)  # an older, interrupted attempt
        try:
            top = _unpack(archive, part)
            (part / _DONE).write_text(top + "\n")
            os.rename(part, unpacked)
        finally:
            shutil.rmtree(part, ignore_errors=True)
    found = _ready(unpacked)
    if found is None:
        raise FixtureError(f"{unpacked} is not complete after unpacking {archive}")
    return found
