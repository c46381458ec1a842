"""gixy (the maintained Nginx configuration analyser, `gixy-ng` on PyPI) on a whole rendered
tree: `barracuda install --root DIR` and an octopus instance with a site of each vhost type
(Drupal 8+, Drupal 7, PHP, and the old `plain` name). Nothing above LOW may be found.

Two narrow exclusions, each for a reason of ours:
- `hsts_header` for a server that has not opted in. HSTS is a per-site choice (`--hsts`)
  because it needs a certificate browsers trust; sent for a name served with the self-signed
  wildcard certificate it would lock visitors out for a year. A site that opted in must not
  be reported.
- `try_files_is_evil_too` (performance advice: try_files without open_file_cache). The
  cache would also keep the answer of the crawler shield's `if (-f FLAG)` and of file
  existence for its validity time: the monitor's shield would stay up after the flag is
  removed (tests/box/test_nginx.py proves it switches at once) and a deleted file would
  still be served. Only that check is excluded, and only for the try_files it names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import run

GIXY = Path(sys.executable).parent / "gixy"
SITES = {  # domain -> (platform, extra arguments of `site add`)
    "d8.example.org": ("d8", ["--alias", "dev.d8.example.org", "--hsts"]),
    "d7.example.org": ("d7", []),
    "app.example.org": ("app", ["--type", "php"]),
    "old.example.org": ("app", ["--type", "plain"]),
}
HSTS_OPTED_IN = {"d8.example.org"}
SEVERITIES = ["UNSPECIFIED", "LOW", "MEDIUM", "HIGH"]


def platform(base: Path, name: str, files: dict[str, str]) -> Path:
    tree = base / name
    for path, text in {"index.php": "<?php\n", **files}.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    return tree


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tree as the tools write it, then made readable for gixy: absolute includes point
    into the tree, and the files Debian's nginx package ships get small stand-ins."""
    root = tmp_path_factory.mktemp("root")
    sources = tmp_path_factory.mktemp("platforms")
    trees = {"d8": platform(sources, "d8", {"core/lib/Drupal.php": "<?php\n"}),
             "d7": platform(sources, "d7", {"includes/bootstrap.inc": "<?php\n"}),
             "app": platform(sources, "app", {"wp-login.php": "<?php\n"})}
    steps: list[list[str]] = [["barracuda", "install"],
                              ["octopus", "install", "o1", "--email", "ops@example.org"]]
    steps += [["octopus", "platform", "add", "o1", name, "--path", str(tree)]
              for name, tree in trees.items()]
    steps += [["octopus", "site", "add", "o1", domain, "--platform", name, *extra]
              for domain, (name, extra) in SITES.items()]
    for tool, *args in steps:
        result = run(tool, *args, "--root", str(root), "--yes")
        assert result.returncode == 0, (args, result.stderr[-2000:])
    copy = tmp_path_factory.mktemp("gixy") / "root"
    shutil.copytree(root, copy, symlinks=True)
    for conf in copy.rglob("*.conf"):
        text = conf.read_text()
        conf.write_text(re.sub(r"(?m)^(\s*include\s+)/", rf"\g<1>{copy}/", text))
    nginx = copy / "etc/nginx"
    (nginx / "mime.types").write_text("types {\n    text/html html;\n}\n")
    (nginx / "fastcgi_params").write_text("fastcgi_param QUERY_STRING $query_string;\n"
                                          "fastcgi_param REQUEST_URI $request_uri;\n")
    return copy


def findings(rendered: Path) -> list[dict[str, Any]]:
    result = subprocess.run([str(GIXY), "-f", "json", str(rendered / "etc/nginx/nginx.conf")],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.stdout.strip().startswith("["), result.stderr[-2000:]
    issues: list[dict[str, Any]] = json.loads(result.stdout)
    return issues


def test_every_vhost_type_is_rendered(rendered: Path) -> None:
    vhosts = rendered / "data/disk/o1/config/server_master/nginx/vhost.d"
    kinds = {p.stem: re.search(r"\((\w+)\)\.$", p.read_text(), re.M) for p in
             vhosts.glob("*.conf")}
    assert {d: m.group(1) if m else "" for d, m in kinds.items()} == {
        "d8.example.org": "drupal", "d7.example.org": "drupal7", "app.example.org": "php",
        "old.example.org": "plain"}
    # gixy reads the whole tree: the site vhosts are reached through the includes.
    text = (rendered / "var/aegir/config/server_master/nginx.conf").read_text()
    assert f"include {rendered}/var/aegir/config/server_master/nginx/platform.d/" in text


def test_gixy_finds_nothing_above_low(rendered: Path) -> None:
    issues = findings(rendered)
    serious = []
    for issue in issues:
        if SEVERITIES.index(issue["severity"]) <= SEVERITIES.index("LOW"):
            continue
        if issue["plugin"] == "try_files_is_evil_too":
            assert "try_files" in issue["config"], issue
            continue
        if issue["plugin"] == "hsts_header":
            named = set(re.findall(r"server_name ([^;]+);", issue["config"]))
            names = {n for line in named for n in line.split()}
            assert not names & HSTS_OPTED_IN, issue["config"]  # opted in: never reported
            continue
        serious.append(f"{issue['severity']} {issue['plugin']}: {issue['reason']} "
                       f"({issue['file']}:{issue['line']})")
    assert serious == []


def test_gixy_reports_a_real_problem(rendered: Path, tmp_path: Path) -> None:
    """The harness can fail: a vhost with a header split by $uri is reported HIGH."""
    bad = rendered / "var/aegir/config/server_master/nginx/post.d/zz-bad.conf"
    bad.write_text("server {\n    server_name bad.example.org;\n"
                   "    location / {\n        return 302 https://example.org$uri;\n    }\n}\n")
    try:
        plugins = {(i["plugin"], i["severity"]) for i in findings(rendered)}
    finally:
        bad.unlink()
    assert ("http_splitting", "HIGH") in plugins
