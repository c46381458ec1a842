"""Names an operator gives octopus: instances whose accounts would be another instance's,
sites named like a platform's files, and the sources a platform may be cloned from."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.errors import ConfigError
from installer.octopus.model import Instance
from installer.octopus.names import (
    accounts,
    check_accounts_free,
    check_domain,
    check_git_ref,
    check_git_url,
    check_instance_name,
    check_site_name,
)


def test_accounts_are_those_of_the_model() -> None:
    assert set(accounts("o1")) == set(Instance("o1").users)


@pytest.mark.parametrize("name", ["o1.web", "o1.ftp", "shop.eu.web", "x.ftp"])
def test_names_of_derived_accounts_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="may not end in"):
        check_instance_name(name)


def test_a_new_instance_takes_no_account_of_another() -> None:
    check_accounts_free("o2", ["o1", "o1-x"])
    check_accounts_free("o1.webshop", ["o1"])
    for name, others in (("o1.web", ["o1"]), ("o1", ["o1.ftp"])):
        with pytest.raises(ConfigError, match="is an account of instance"):
            check_accounts_free(name, others)


def test_names_are_one_line_however_they_are_given() -> None:
    for bad in ("o1\nrm", "o1\x1b[2J", "o" * 100_000):
        with pytest.raises(ConfigError) as caught:
            check_instance_name(bad)
        assert "\n" not in str(caught.value) and len(str(caught.value)) < 300
    with pytest.raises(ConfigError) as caught:
        check_domain("a.example.org\nb")
    assert '"a.example.org\\nb"' in str(caught.value)


def test_sites_named_like_a_platforms_files(tmp_path: Path) -> None:
    for name in ("sites.php", "example.sites.php", "readme.txt", "default.settings.php",
                 "development.services.yml", "x.example.php"):
        with pytest.raises(ConfigError, match="a platform has a file or directory"):
            check_site_name(name)
    assert check_site_name("a.example.org", tmp_path) == "a.example.org"
    assert check_site_name("example.md", tmp_path) == "example.md"  # Moldova's TLD
    (tmp_path / "sites/left.example.org").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"already has sites/left\.example\.org"):
        check_site_name("left.example.org", tmp_path)


def test_git_sources_that_are_allowed(tmp_path: Path) -> None:
    for url in ("https://github.com/drupal/recommended-project.git",
                "https://git.example.org:8443/team/site", "ssh://git@example.org/team/site.git",
                "ssh://example.org:2222/srv/git/site", "git@github.com:drupal/drupal.git",
                str(tmp_path), f"file://{tmp_path}"):
        assert check_git_url(url) == url
    for ref in ("main", "11.x", "release/2024-05", "v1.2.3+build"):
        assert check_git_ref(ref) == ref


@pytest.mark.parametrize("url", [
    "ext::sh -c touch% /tmp/x", "ext::foo", "fd::3", "-uhelp", "--upload-pack=x",
    "http://example.org/a.git", "git://example.org/a.git", "ftp://example.org/a.git",
    "https://-x.example.org/a", "https://example.org", "git@example.org:-x",
    "/nonexistent/repo", "file:///nonexistent", "file://relative/path", "example.org:a.git",
    "https://example.org/a.git\n", "https://example.org/a b",
])
def test_git_sources_that_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="bad --git"):
        check_git_url(url)


@pytest.mark.parametrize("ref", ["-x", "--upload-pack=x", "a..b", "a b", "", "a\nb", "x" * 201])
def test_git_refs_that_are_refused(ref: str) -> None:
    with pytest.raises(ConfigError, match="bad --ref"):
        check_git_ref(ref)
