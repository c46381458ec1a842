"""tests/box/fixtures.py: the Drupal fixtures are found, unpacked once and shared; missing
ones skip, or fail under CI (fast: a tiny archive made here, no box)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tests.box import fixtures

pytestmark = pytest.mark.skipif(shutil.which("zstd") is None, reason="needs zstd")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty fixtures dir and box cache; CI unset."""
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    monkeypatch.setenv("BARRACUDA_FIXTURES", str(shelf))
    monkeypatch.setenv("BARRACUDA_BOX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CI", raising=False)
    return shelf


def make_archive(shelf: Path, name: str, files: dict[str, str]) -> Path:
    src = shelf.parent / f"src-{name}"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    archive = shelf / f"{name}.tar.zst"
    subprocess.run(["tar", "-I", "zstd", "-C", str(src), "-cf", str(archive), "."],
                   check=True, timeout=60)
    return archive


def test_unpacks_once_and_returns_the_top_folder(env: Path, tmp_path: Path) -> None:
    make_archive(env, "pressflow-7.95", {"pressflow-7.95/index.php": "<?php\n",
                                         "pressflow-7.95/includes/bootstrap.inc": "x\n"})
    tree = fixtures.fixture_tree("pressflow-7.95")
    assert tree.name == "pressflow-7.95" and (tree / "index.php").read_text() == "<?php\n"
    assert tmp_path / "cache" / "fixtures" in tree.parents
    marker = tree / "seen-by-the-first-call"
    marker.write_text("")
    assert fixtures.fixture_tree("pressflow-7.95") == tree
    assert marker.exists(), "the second call unpacked the archive again"
    assert [p.name for p in (tmp_path / "cache" / "fixtures").iterdir()
            if not p.name.startswith(".")] == [tree.parent.name]


def test_a_changed_archive_is_unpacked_afresh(env: Path) -> None:
    make_archive(env, "d", {"d/VERSION": "1\n"})
    first = fixtures.fixture_tree("d")
    (env / "d.tar.zst").unlink()
    shutil.rmtree(env.parent / "src-d")
    make_archive(env, "d", {"d/VERSION": "2\n"})
    second = fixtures.fixture_tree("d")
    assert second != first and (second / "VERSION").read_text() == "2\n"


def test_parallel_callers_share_one_unpack(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_archive(env, "drupal-11", {"drupal-11/web/index.php": "<?php\n"})
    calls: list[Path] = []
    real = fixtures._unpack

    def counted(archive: Path, dest: Path) -> str:
        calls.append(dest)
        return real(archive, dest)

    monkeypatch.setattr(fixtures, "_unpack", counted)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(fixtures.fixture_tree(
        "drupal-11"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 4 and len(set(results)) == 1, results
    assert len(calls) == 1, calls


def test_an_interrupted_unpack_is_redone(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_archive(env, "p", {"p/a": "a\n"})

    def broken(archive: Path, dest: Path) -> str:
        dest.mkdir(parents=True)
        (dest / "p").mkdir()
        raise fixtures.FixtureError("disk full")

    monkeypatch.setattr(fixtures, "_unpack", broken)
    with pytest.raises(fixtures.FixtureError):
        fixtures.fixture_tree("p")
    monkeypatch.undo()
    monkeypatch.setenv("BARRACUDA_FIXTURES", str(env))
    monkeypatch.setenv("BARRACUDA_BOX_CACHE", str(env.parent / "cache"))
    assert (fixtures.fixture_tree("p") / "a").read_text() == "a\n"


def test_an_archive_without_one_top_folder_is_refused(env: Path) -> None:
    make_archive(env, "flat", {"index.php": "<?php\n", "core/x": ""})
    with pytest.raises(fixtures.FixtureError, match="one top folder"):
        fixtures.fixture_tree("flat")


def test_missing_fixture_skips_with_where_to_put_it(env: Path) -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        fixtures.fixture_tree("pressflow-7.95")
    message = str(skipped.value)
    assert "pressflow-7.95.tar.zst" in message and str(env) in message
    assert "BARRACUDA_FIXTURES" in message and "\n" not in message


def test_missing_fixture_fails_under_ci(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        fixtures.fixture_tree("pressflow-7.95")


def test_default_shelf_is_beside_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BARRACUDA_FIXTURES", raising=False)
    repo = Path(fixtures.__file__).resolve().parents[2]
    assert fixtures.fixtures_dir() == repo.parent / "shared" / "fixtures"


def test_bad_names_are_refused(env: Path) -> None:
    for bad in ("", "../etc", ".hidden", "a/b"):
        with pytest.raises(ValueError):
            fixtures.fixture_tree(bad)
