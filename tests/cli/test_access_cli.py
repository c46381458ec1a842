"""`octopus client ...` and `octopus key ...` as a user runs them, under --root: records,
maps and keys written, one-line errors that change nothing, a second run with nothing to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import run, tree
from tests.cli.test_commands import root  # noqa: F401  (the fixture)

KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPbi+uG/A4qY6+2zVe2yHmUHR8qJ4rOSagl4X+Bdbfcm "
       "me@x\n")
FINGERPRINT = "SHA256:d65gi1zftMmf9nY8KD9yp+Sze8Xo3Sn6Z10H6NsX4IQ"


@pytest.fixture
def site_root(root: Path, tmp_path: Path) -> Path:  # noqa: F811
    code = tmp_path / "code"
    code.mkdir()
    (code / "index.php").write_text("<?php\n")
    for args in (["install", "o1"], ["platform", "add", "o1", "web", "--path", str(code)],
                 ["site", "add", "o1", "a.example.org", "--platform", "web"],
                 ["site", "add", "o1", "b.example.org", "--platform", "web"]):
        done = run("octopus", *args, "--root", str(root), "--yes")
        assert done.returncode == 0, done.stderr
    (tmp_path / "k.pub").write_text(KEY)
    return root


def octopus(top: Path, *args: str) -> tuple[int, str, str]:
    done = run("octopus", *args, "--root", str(top))
    return done.returncode, done.stdout, done.stderr


def test_clients_keys_and_grants(site_root: Path, tmp_path: Path) -> None:
    r = site_root
    assert octopus(r, "client", "add", "o1", "acme", "--email", "a@example.org", "--yes")[0] == 0
    assert octopus(r, "client", "grant", "o1", "acme", "a.example.org", "--yes")[0] == 0
    assert octopus(r, "key", "add", "o1.acme", str(tmp_path / "k.pub"), "--yes")[0] == 0
    assert octopus(r, "key", "add", "o1", str(tmp_path / "k.pub"), "--yes")[0] == 0
    keys = (r / "etc/ssh/barracuda-keys/o1.acme").read_text()
    assert "restrict,pty ssh-ed25519 AAAAC3Nz" in keys
    account = json.loads((r / "etc/barracuda/access/o1.acme/account.json").read_text())
    assert list(account["sites"]) == ["a.example.org"]
    assert account["roots"] == ["/home/o1.acme",
                                "/data/disk/o1/platforms/web/sites/a.example.org"]
    assert (r / "etc/barracuda/access/o1.acme/drush/a.example.org.site.yml").is_file()
    code, out, _ = octopus(r, "key", "list", "o1.acme")
    assert code == 0 and FINGERPRINT in out
    code, out, _ = octopus(r, "status", "o1")
    assert code == 0 and "o1.acme" in out and FINGERPRINT in out and "a.example.org" in out
    listed = json.loads(octopus(r, "client", "list", "o1", "--json")[1])
    assert [a["account"] for a in listed["accounts"]] == ["o1.ftp", "o1.acme"]
    # Converged: nothing left to do.
    assert octopus(r, "up-stable", "o1", "--check")[0] == 0
    # Revoke, then remove the key by its fingerprint, then the client.
    assert octopus(r, "client", "revoke", "o1", "acme", "a.example.org", "--yes")[0] == 0
    assert not (r / "etc/barracuda/access/o1.acme/drush/a.example.org.site.yml").exists()
    assert octopus(r, "key", "remove", "o1.acme", FINGERPRINT, "--yes")[0] == 0
    assert not (r / "etc/ssh/barracuda-keys/o1.acme").exists()
    assert octopus(r, "client", "remove", "o1", "acme", "--yes")[0] == 0
    assert not (r / "etc/barracuda/access/o1.acme").exists()
    assert not (r / "data/disk/o1/config/access/o1.acme.yml").exists()


@pytest.mark.parametrize("args", [
    ["client", "add", "o1", "ftp"],
    ["client", "add", "o1", "Bad.Name"],
    ["client", "add", "o9", "acme"],
    ["client", "grant", "o1", "nobody", "a.example.org"],
    ["key", "add", "o1.nobody", "{tmp}/k.pub"],
    ["key", "add", "o1", "{tmp}/missing.pub"],
    ["key", "add", "o1", "{tmp}/bad.pub"],
    ["key", "remove", "o1", "SHA256:nope"],
    ["key", "list", "o7"],
])
def test_bad_input_is_one_line_and_changes_nothing(site_root: Path, tmp_path: Path,
                                                   args: list[str]) -> None:
    (tmp_path / "bad.pub").write_text("command=\"sh\" " + KEY)
    before = {p: (site_root / p).stat().st_mtime_ns for p in tree(site_root)
              if not p.startswith("var/log")}
    extra = [] if args[1] == "list" else ["--yes"]
    code, out, err = octopus(site_root, *(a.format(tmp=tmp_path) for a in args), *extra)
    assert code != 0 and out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    after = {p: (site_root / p).stat().st_mtime_ns for p in tree(site_root)
             if not p.startswith("var/log")}
    assert after == before
