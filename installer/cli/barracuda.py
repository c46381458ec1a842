"""`barracuda`: owns the machine (install, status, config)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from installer import __version__
from installer.cli import backup
from installer.cli import firewall as firewall_cli
from installer.cli import monitor as monitor_cli
from installer.cli import options as opt
from installer.cli import upgrade as upgrade_cli
from installer.cli.app import App, application
from installer.cli.entry import exit_on_failures, run_app
from installer.cli.status import status_report
from installer.config import cnf, load, resolve_path
from installer.config.schema import schema, validate
from installer.converge import run_converge
from installer.errors import ConfigError
from installer.stack import build

app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="Install, tune and upgrade the hosting stack on this machine.",
)
config_app = typer.Typer(no_args_is_help=True, help="Show or check the configuration.")
app.add_typer(config_app, name="config")
app.add_typer(backup.app, name="backup")
app.add_typer(monitor_cli.app, name="monitor")
app.add_typer(firewall_cli.app, name="firewall")
FILE_ARG = typer.Argument(None, help="The file to check (default: the live config).")


@app.callback()
def root(ctx: typer.Context) -> None:
    ctx.obj = App()  # the commands' shared options fill it in (installer/cli/options.py)


@app.command(cls=opt.takes(*opt.CONVERGE))
def install(ctx: typer.Context) -> None:
    """Converge this machine to the stack the configuration describes."""
    this = application(ctx)
    exit_on_failures(run_converge(this.options, this, "install", build))


@app.command(cls=opt.takes("json", "root", "config"))
def status(ctx: typer.Context) -> None:
    """Show the machine, its services and the last runs."""
    status_report(application(ctx), build)


@app.command()
def version() -> None:
    """Print the tool's version."""
    print(__version__)


@config_app.command("show", cls=opt.takes("json", "root", "config"))
def config_show(ctx: typer.Context) -> None:
    """Every key with its effective value and where it came from."""
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
    this = application(ctx)
    path = file or resolve_path(this.config, this.root)
    try:
        parsed = cnf.read(path)
    except FileNotFoundError:
        raise ConfigError("no such file", path=str(path)) from None
    checked = validate(parsed)
    note = f", {len(checked.ignored)} BOA keys ignored" if checked.ignored else ""
    print(f"{path}: OK ({len(parsed.entries)} keys set{note})")


upgrade_cli.register(app)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
