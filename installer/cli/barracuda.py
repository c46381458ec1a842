"""`barracuda`: owns the machine (install, status, config)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from installer import __version__
from installer.cli import options as opt
from installer.cli.app import App, application
from installer.cli.entry import exit_on_failures, run_app
from installer.cli.lazy import Lazy, LazyGroup

# What a command imports, it imports in its body or through a lazy subcommand: `barracuda
# version` and `--help` load neither the engine nor the stack (tests/unit/test_startup.py).


class Barracuda(LazyGroup):
    lazy = {
        "backup": Lazy("installer.cli.backup:app",
                       "Database backups: run, verify, list, restore."),
        "monitor": Lazy("installer.cli.monitor:app",
                        "The self-healing monitor: run (from cron), status, reset."),
        "firewall": Lazy("installer.cli.firewall:app",
                         "The firewall (nftables) and abuse guard (fail2ban): status, allow, "
                         "deny, unban."),
        **{f"up-{channel}": Lazy(
            "installer.cli.upgrade:register",
            f"Upgrade to the {channel} channel: the tool, the stack's packages and its "
            "configuration (`system`: operating-system packages only).")
           for channel in ("stable", "head")},
        "rollback": Lazy("installer.cli.upgrade:register",
                         "Undo the last run that changed something (its configuration "
                         "snapshot and tool environment), after listing what that "
                         "restores; a run already rolled back is refused."),
    }


app = typer.Typer(
    cls=Barracuda, add_completion=False, no_args_is_help=True,
    help="Install, tune and upgrade the hosting stack on this machine.",
)
config_app = typer.Typer(no_args_is_help=True, help="Show or check the configuration.")
app.add_typer(config_app, name="config")
FILE_ARG = typer.Argument(None, help="The file to check (default: the live config).")


@app.callback()
def root(ctx: typer.Context) -> None:
    ctx.obj = App()  # the commands' shared options fill it in (installer/cli/options.py)


@app.command(cls=opt.takes(*opt.CONVERGE))
def install(ctx: typer.Context) -> None:
    """Converge this machine to the stack the configuration describes."""
    from installer.converge import run_converge
    from installer.stack import build

    this = application(ctx)
    exit_on_failures(run_converge(this.options, this, "install", build))


@app.command(cls=opt.takes("json", "root", "config"))
def status(ctx: typer.Context) -> None:
    """Show the machine, its services and the last runs."""
    from installer.cli.status import status_report
    from installer.stack import build

    status_report(application(ctx), build)


@app.command()
def version() -> None:
    """Print the tool's version."""
    print(__version__)


@config_app.command("show", cls=opt.takes("json", "root", "config"))
def config_show(ctx: typer.Context) -> None:
    """Every key with its effective value and where it came from."""
    from installer.config import cnf, load, resolve_path
    from installer.config.schema import schema

    this = application(ctx)
    path = resolve_path(this.config, this.root)
    loaded = load(path)
    rows = [(s.key, s.raw, s.source) for s in loaded.settings.values()]
    if this.json:
        this.emit_json({
            "path": str(path), "exists": loaded.exists, "ignored": list(loaded.ignored),
            "settings": {k: {"value": v, "source": src} for k, v, src in rows},
        })
        return
    print(f"# {path}" + ("" if loaded.exists else " (missing: defaults shown)"))
    width = max(len(key) for key in schema())
    for key, value, source in rows:
        print(f"{key:<{width}}  {cnf.quote(value):<24}  {source}")
    if loaded.ignored:
        print(f"# BOA keys present and ignored: {' '.join(loaded.ignored)}")


@config_app.command("check", cls=opt.takes("root", "config"))
def config_check(ctx: typer.Context, file: Optional[Path] = FILE_ARG) -> None:
    """Validate a config file; exit 3 with file:line, key and what is allowed when bad."""
    from installer.config import cnf, resolve_path
    from installer.config.schema import validate
    from installer.errors import ConfigError

    this = application(ctx)
    path = file or resolve_path(this.config, this.root)
    try:
        parsed = cnf.read(path)
    except FileNotFoundError:
        raise ConfigError("no such file", path=str(path)) from None
    checked = validate(parsed)
    note = f", {len(checked.ignored)} BOA keys ignored" if checked.ignored else ""
    print(f"{path}: OK ({len(parsed.entries)} keys set{note})")



def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
