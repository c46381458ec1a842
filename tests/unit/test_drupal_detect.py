"""Platform detection on small synthetic trees shaped like the real layouts, and on the real
Drupal codebases of ../shared/fixtures when they are there."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from installer.drupal import detect
from installer.drupal.detect import DRUPAL, DRUPAL7, PHP, PlatformError

REPO = Path(__file__).resolve().parents[2]
# ../shared/fixtures beside the checkout (or beside the main checkout of a worktree).
FIXTURES = Path(os.environ.get("BARRACUDA_FIXTURES") or next(
    (c for c in (REPO.parent / "shared" / "fixtures", REPO.parent.parent / "shared" / "fixtures")
     if c.is_dir()), REPO.parent / "shared" / "fixtures"))


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def d7_tree(root: Path, version: str = "7.101", pressflow: bool = True) -> Path:
    write(root / "index.php", "<?php\n")
    bootstrap = f"<?php\ndefine('VERSION', '{version}');\ndefine('DRUPAL_MINIMUM_PHP', '5.3.3');\n"
    if pressflow:
        bootstrap += "$x = $_SERVER['PRESSFLOW_SETTINGS'];\n"
    write(root / "includes" / "bootstrap.inc", bootstrap)
    write(root / "profiles" / "standard" / "standard.info",
          "name = Standard\ncore = 7.x\ndependencies[] = block\n")
    write(root / "profiles" / "minimal" / "minimal.info", "name = Minimal\ncore = 7.x\n")
    write(root / "profiles" / "testing" / "testing.info",
          "name = Testing\ncore = 7.x\nhidden = TRUE\n")
    write(root / "profiles" / "README.txt", "profiles\n")
    return root


def d11_project(root: Path, web: str = "web") -> Path:
    docroot = root / web
    write(docroot / "index.php", "<?php\n")
    write(docroot / "core" / "lib" / "Drupal.php",
          "<?php\nclass Drupal {\n  const VERSION = '11.2.8';\n  const MINIMUM_PHP = '8.3.0';\n}\n")
    for name, hidden in (("standard", False), ("minimal", False), ("demo_umami", False)):
        write(docroot / "core" / "profiles" / name / f"{name}.info.yml",
              f"name: {name}\ntype: profile\nhidden: {str(hidden).lower()}\n")
    write(docroot / "core" / "profiles" / "tests" / "testing" / "testing.info.yml",
          "name: Testing\ntype: profile\nhidden: true\n")
    write(docroot / "profiles" / "contrib" / "acme" / "acme.info.yml",
          "name: Acme\ntype: profile\n")
    write(docroot / "modules" / "contrib" / "redis" / "redis.info.yml",
          "name: Redis\ntype: module\n")
    write(root / "vendor" / "bin" / "drush", "#!/usr/bin/env sh\n")
    write(root / "vendor" / "composer" / "platform_check.php",
          "<?php\nif (!(PHP_VERSION_ID >= 80300)) {\n}\n")
    return root


def test_drupal7_pressflow(tmp_path: Path) -> None:
    platform = detect.detect(d7_tree(tmp_path / "p"))
    assert (platform.core, platform.version, platform.major) == (DRUPAL7, "7.101", 7)
    assert platform.fork == "pressflow"
    assert platform.docroot == platform.root and platform.docroot_rel == ""
    assert platform.profiles == ("minimal", "standard")  # testing is hidden
    assert platform.drush is None and platform.redis_module is None
    assert (platform.php_min, platform.php_min_source) == ("5.3.3", "Drupal core's minimum")
    assert platform.describe() == ("Drupal 7.101 (pressflow), docroot ., profiles "
                                   "minimal,standard, PHP >= 5.3.3")


def test_drupal7_vanilla_with_redis_module(tmp_path: Path) -> None:
    root = d7_tree(tmp_path / "p", version="7.98", pressflow=False)
    write(root / "sites" / "all" / "modules" / "contrib" / "redis" / "redis.info", "name = Redis\n")
    platform = detect.detect(root)
    assert platform.fork == "" and platform.version == "7.98"
    assert platform.redis_module == root / "sites" / "all" / "modules" / "contrib" / "redis"


@pytest.mark.parametrize("web", ["web", "docroot"])
def test_composer_project_docroot(tmp_path: Path, web: str) -> None:
    platform = detect.detect(d11_project(tmp_path / "p", web))
    assert (platform.core, platform.version, platform.major) == (DRUPAL, "11.2.8", 11)
    assert platform.docroot == platform.root / web and platform.docroot_rel == web
    assert platform.profiles == ("acme", "demo_umami", "minimal", "standard")
    assert platform.drush == platform.root / "vendor" / "bin" / "drush"
    assert platform.php_min == "8.3.0"
    assert platform.php_min_source == "vendor/composer/platform_check.php"
    assert platform.redis_module == platform.docroot / "modules" / "contrib" / "redis"


def test_scaffold_web_root_from_composer_json(tmp_path: Path) -> None:
    root = d11_project(tmp_path / "p", "public")
    write(root / "composer.json",
          '{"extra": {"drupal-scaffold": {"locations": {"web-root": "public/"}}}}')
    assert detect.detect(root).docroot == root / "public"


def test_composer_lock_platform_raises_the_minimum(tmp_path: Path) -> None:
    root = d11_project(tmp_path / "p")
    write(root / "composer.lock", '{"packages": [], "platform": {"php": ">=8.4"}}')
    platform = detect.detect(root)
    assert (platform.php_min, platform.php_min_source) == ("8.4", "composer.lock platform.php")


def test_plain_php_and_not_an_application(tmp_path: Path) -> None:
    write(tmp_path / "app" / "index.php", "<?php echo 1;\n")
    write(tmp_path / "app" / "wp-login.php", "<?php\n")
    platform = detect.detect(tmp_path / "app")
    assert (platform.core, platform.version, platform.major) == (PHP, "", 0)
    assert platform.profiles == () and platform.describe() == "PHP, docroot ."
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlatformError, match="neither Drupal nor a PHP application"):
        detect.detect(tmp_path / "empty")
    with pytest.raises(PlatformError, match="not a directory"):
        detect.detect(tmp_path / "missing")


def test_require_php_refuses_in_one_line(tmp_path: Path) -> None:
    platform = detect.detect(d11_project(tmp_path / "p"))
    detect.require_php(platform, "8.4")
    detect.require_php(platform, "8.3.0")
    with pytest.raises(PlatformError) as caught:
        detect.require_php(platform, "8.2", instance="o1")
    message = str(caught.value)
    assert "\n" not in message
    assert "needs PHP 8.3.0 or later" in message and "instance o1 runs PHP 8.2" in message


def test_versions() -> None:
    assert detect.version_tuple("8.4.11-1+deb13") == (8, 4, 11)
    assert detect.php_satisfies("", "5.6")
    assert not detect.php_satisfies("8.3.0", "8.2.29")
    with pytest.raises(ValueError):
        detect.version_tuple("php")


def test_info_parsing_and_old_short_name(tmp_path: Path) -> None:
    root = d7_tree(tmp_path / "p")
    write(root / "profiles" / "commons" / "commons.info",
          '; a comment\nname = "Commons"\nold_short_name = drupal_commons\nhidden = 0\n'
          "dependencies[] = x\n")
    assert detect.parse_info("name = 'A = B'\nfiles[] = a.inc\n") == {"name": "A = B"}
    platform = detect.detect(root)
    assert "commons" in platform.profiles
    assert detect.d7_old_short_name(platform, "commons") == "drupal_commons"
    assert detect.d7_old_short_name(platform, "standard") == ""


def test_as_record_is_plain_data(tmp_path: Path) -> None:
    record = detect.detect(d11_project(tmp_path / "p")).as_record()
    assert record["docroot"] == "web" and record["major"] == 11
    assert record["drush"].endswith("vendor/bin/drush")


# --------------------------------------------------------------------------- real codebases


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    names = ["pressflow-7.95", "pressflow-7.101", "drupal-11.2.8"]
    if not all((FIXTURES / f"{name}.tar.zst").is_file() for name in names):
        pytest.skip(f"the Drupal codebases are not in {FIXTURES} (see its README)")
    if not shutil.which("zstd"):
        pytest.skip("zstd is needed to unpack the Drupal codebases")
    out = tmp_path_factory.mktemp("fixtures")
    for name in names:
        subprocess.run(["tar", "--zstd", "-xf", str(FIXTURES / f"{name}.tar.zst"), "-C", str(out)],
                       check=True, timeout=300)
    return out


@pytest.mark.parametrize("name,version", [("pressflow-7.95", "7.95"),
                                          ("pressflow-7.101", "7.101")])
def test_real_drupal7(fixtures: Path, name: str, version: str) -> None:
    platform = detect.detect(fixtures / name)
    assert (platform.core, platform.version, platform.fork) == (DRUPAL7, version, "pressflow")
    assert platform.docroot == fixtures / name
    assert platform.profiles == ("minimal", "standard")
    assert platform.drush is None
    assert platform.php_min == "5.3.3"


def test_real_drupal11(fixtures: Path) -> None:
    platform = detect.detect(fixtures / "drupal-11.2.8")
    assert (platform.core, platform.version, platform.major) == (DRUPAL, "11.2.8", 11)
    assert platform.docroot_rel == "web"
    assert platform.profiles == ("demo_umami", "minimal", "standard")
    assert platform.drush == fixtures / "drupal-11.2.8" / "vendor" / "bin" / "drush"
    assert platform.php_min == "8.3.0"
    with pytest.raises(PlatformError, match=r"needs PHP 8\.3\.0 or later .*runs PHP 8\.2"):
        detect.require_php(platform, "8.2")


def test_a_drupal_8_tree_whose_version_cannot_be_read_is_still_drupal(tmp_path: Path) -> None:
    (tmp_path / "core/lib").mkdir(parents=True)
    (tmp_path / "core/lib/Drupal.php").write_text("<?php\n")
    (tmp_path / "index.php").write_text("<?php\n")
    found = detect.detect(tmp_path)
    assert (found.core, found.version, found.major) == (detect.DRUPAL, "", 8)
