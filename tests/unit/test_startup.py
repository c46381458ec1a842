"""Start-up: `barracuda version` and `--help` import neither the engine nor the heavy
libraries (installer/cli/lazy.py), and every lazy subcommand is the command it claims."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from installer.cli import barracuda
from installer.cli.lazy import load

REPO = Path(__file__).resolve().parents[2]
# What a command that only prints must not load: the third-party libraries that cost the
# most to import, and the engine, the stack and the agents.
HEAVY = ("jinja2", "requests", "urllib3", "psutil", "yaml", "installer.converge",
         "installer.stack", "installer.agents", "installer.apply", "installer.plan",
         "installer.facts", "installer.octopus", "installer.upgrade", "installer.config")
PROBE = """
import atexit, sys
atexit.register(lambda: sys.__stdout__.write("\\nMODULES " + " ".join(sys.modules) + "\\n"))
sys.argv = ["barracuda", *sys.argv[1:]]
from installer.cli.barracuda import main
main()
"""


def modules_after(*args: str) -> tuple[str, set[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True)
    output, _, modules = done.stdout.rpartition("\nMODULES ")
    return output, set(modules.split())


@pytest.mark.parametrize("args", [("version",), ("--help",), ("backup", "--help")])
def test_printing_commands_import_nothing_heavy(args: tuple[str, ...]) -> None:
    output, modules = modules_after(*args)
    assert output.strip()
    loaded = sorted(m for m in modules for heavy in HEAVY
                    if m == heavy or m.startswith(heavy + "."))
    if args[0] == "backup":  # its own module is loaded for its help, and what it imports
        assert "installer.cli.backup" in modules
        return
    assert loaded == [], f"barracuda {' '.join(args)} imported {loaded}"


def test_an_invoked_lazy_command_is_loaded_and_runs() -> None:
    output, modules = modules_after("rollback", "--help")
    assert "Undo the last run that changed something" in output
    assert "installer.cli.upgrade" in modules and "installer.cli.backup" not in modules


@pytest.mark.parametrize("name", sorted(barracuda.Barracuda.lazy))
def test_lazy_entries_show_their_commands_own_help(name: str) -> None:
    entry = barracuda.Barracuda.lazy[name]
    command = load(name, entry)
    assert command.name == name
    assert " ".join((command.help or "").split()) == entry.help  # the docstring wraps
    if isinstance(command, click.Group):
        assert command.list_commands(click.Context(command))  # a group with its commands
