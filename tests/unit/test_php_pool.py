"""An instance's PHP-FPM pool as rendered (issue 12, holes 5 and 7): no function that starts
a process, one temporary directory of its own for everything, open_basedir without /tmp;
and the command line (Drush, cron) left unrestricted."""

from __future__ import annotations

import re

from installer.data import load_profile
from installer.octopus.components import build_instance
from installer.octopus.model import SiteRecord
from installer.stack import php
from installer.templates import render
from tests.unit.test_octopus import instance_state, two_php_stack

OCTOPUS = load_profile("octopus")["php"]
LAUNCHERS = {"exec", "shell_exec", "system", "passthru", "proc_open", "popen", "pcntl_exec",
             "putenv"}


def pool() -> dict[str, str]:
    site = SiteRecord("a.example.org", "web", "o1_a", "o1_a", "pw")
    components = build_instance(instance_state("8.2", [site]), two_php_stack(), [])
    file = next(c for c in components if c.name == "o1-php8.2").resources[0]
    text = file.wanted.decode()  # type: ignore[attr-defined]
    return dict(re.findall(r"(?m)^([a-z_.\[\]A-Z]+) = (.*)$", text))


def test_no_function_that_starts_a_process() -> None:
    settings = pool()
    disabled = set(settings["php_admin_value[disable_functions]"].split(","))
    assert disabled >= LAUNCHERS
    assert "mail" not in disabled  # Drupal sends its e-mails with it ...
    forced = settings["php_admin_value[mail.force_extra_parameters]"]
    assert forced == OCTOPUS["mail_extra_parameters"] and forced  # ... without its options
    assert settings["php_admin_value[ffi.enable]"] == "0"


def test_one_temporary_directory_for_everything() -> None:
    settings = pool()
    tmp = "/data/disk/o1/tmp"
    for key in ("php_admin_value[upload_tmp_dir]", "php_admin_value[session.save_path]",
                "php_admin_value[sys_temp_dir]", "php_admin_value[soap.wsdl_cache_dir]",
                "env[TMPDIR]", "env[TMP]", "env[TEMP]"):
        assert settings[key] == tmp, key
    basedir = settings["php_admin_value[open_basedir]"].split(":")
    assert f"{tmp}/" in basedir
    assert not any(d.startswith("/tmp") for d in basedir)
    assert all(d.startswith("/data/disk/o1/") or d in ("/data/all/", "/data/conf/",
                                                       "/usr/share/php/") for d in basedir)


def test_the_command_line_keeps_every_function() -> None:
    stack = two_php_stack()
    cli = render("php/php-cli.ini.j2", stack.template_context("8.2"))
    fpm = render("php/php.ini.j2", stack.template_context("8.2"))
    for text in (cli, fpm):  # the pool file is the only place that restricts
        assert "disable_functions" not in text and "open_basedir" not in text
    directories = {r.path: r for r in php.component(stack, "8.2").resources  # type: ignore[attr-defined]
                   if type(r).__name__ == "Directory"}
    logs = directories["/var/log/php"]
    assert (logs.mode, logs.owner, logs.fgroup) == (0o750, "root", "adm")
