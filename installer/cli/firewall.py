"""`barracuda firewall`: the nftables firewall and fail2ban abuse guard (_XTRAS_LIST CSF/NFT).

allow and deny write the address into _FIREWALL_ALLOW / _FIREWALL_DENY of the config (the one
source of both lists, as csf.allow/csf.deny were), then converge the firewall at once; unban
lifts a ban at once (fail2ban and the nftables set)."""

from __future__ import annotations

import ast
import ipaddress
import json as jsonlib
import re
from dataclasses import replace
from typing import Any

import typer

from installer.cli import options as opt
from installer.cli.app import App, application
from installer.cli.entry import exit_on_failures
from installer.config import Config, cnf, load, resolve_path
from installer.config.schema import validate
from installer.converge import run_converge
from installer.errors import UsageError
from installer.facts import Facts
from installer.fileops import write_atomic
from installer.plan import Component
from installer.runlog import Redactor
from installer.runner import SubprocessRunner
from installer.stack import firewall
from installer.target import Target

app = typer.Typer(no_args_is_help=True,
                  help="The firewall (nftables) and abuse guard (fail2ban): status, allow, "
                       "deny, unban.")
ADDRESS = typer.Argument(..., help="An IPv4/IPv6 address or CIDR network.")


# --------------------------------------------------------------------------- status


def _run(runner: SubprocessRunner, argv: list[str]) -> str | None:
    result = runner.run(argv, check=False, timeout=30)
    return result.stdout if result.ok else None


def banned_by_jail(text: str | None) -> dict[str, str]:
    """address -> jail, from `fail2ban-client banned` (a Python literal list of dicts)."""
    if not text:
        return {}
    try:
        data = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return {}
    found: dict[str, str] = {}
    for item in data if isinstance(data, list) else [data]:
        if isinstance(item, dict):
            for jail, addresses in item.items():
                for address in addresses or []:
                    found.setdefault(str(address), str(jail))
    return found


def set_elements(text: str | None) -> list[dict[str, Any]]:
    """[{address, expires_s}] from `nft -j list set ...`."""
    if not text:
        return []
    try:
        data = jsonlib.loads(text)
    except ValueError:
        return []
    found: list[dict[str, Any]] = []
    for item in data.get("nftables", []):
        for elem in item.get("set", {}).get("elem", []) or []:
            if isinstance(elem, dict) and "elem" in elem:
                inner = elem["elem"]
                found.append({"address": str(inner.get("val")),
                              "expires_s": int(inner.get("expires", inner.get("timeout", 0)))})
            elif isinstance(elem, dict) and "prefix" in elem:
                prefix = elem["prefix"]
                found.append({"address": f"{prefix['addr']}/{prefix['len']}", "expires_s": 0})
            else:
                found.append({"address": str(elem), "expires_s": 0})
    return found


def report(config: Config, facts: Facts, runner: SubprocessRunner) -> dict[str, Any]:
    prof = firewall.profile()
    release = facts.distro.codename
    on = firewall.enabled(config, release)
    fw = firewall.Firewall.from_config(config, release)
    table = str(prof["table"])
    listing = _run(runner, ["nft", "list", "table", "inet", table]) if on else None
    jails = banned_by_jail(_run(runner, ["fail2ban-client", "banned"])) if on else {}
    banned = []
    for family in ("4", "6"):
        raw = _run(runner, ["nft", "-j", "list", "set", "inet", table, f"banned{family}"]) \
            if on else None
        for elem in set_elements(raw):
            banned.append({**elem, "jail": jails.get(elem["address"], "")})
    passive = list(prof["ftp"]["passive"]) if fw.ftp else []
    return {
        "enabled": on,
        "loaded": listing is not None,
        "open_tcp": fw.tcp_ports,
        "ftp_passive": passive,
        "allow": [str(n) for n in fw.allow],
        "deny": [str(n) for n in fw.deny],
        "banned": banned,
        "rules": listing.splitlines() if listing else [],
    }


@app.command(cls=opt.takes("json", "root", "config"))
def status(ctx: typer.Context) -> None:
    """Rules, open ports, the allow/deny lists and the banned addresses with jail and time left."""
    this = application(ctx)
    target = Target(this.root)
    runner = SubprocessRunner()
    loaded = load(resolve_path(this.config, target.root))
    data = report(loaded, Facts(target, runner), runner)
    if this.json:
        this.emit_json(data)
        return
    if not data["enabled"]:
        print("firewall: off (add CSF or NFT to _XTRAS_LIST)")
        return
    print(f"firewall: {'loaded' if data['loaded'] else 'NOT LOADED'}")
    ports = " ".join(str(p) for p in data["open_tcp"])
    if data["ftp_passive"]:
        ports += f" {data['ftp_passive'][0]}-{data['ftp_passive'][1]} (FTPS passive)"
    print(f"open tcp: {ports}")
    print(f"allow: {' '.join(data['allow']) or '-'}")
    print(f"deny: {' '.join(data['deny']) or '-'}")
    print("banned:" + ("" if data["banned"] else " none"))
    for ban in data["banned"]:
        print(f"  {ban['address']:<40} {ban['jail'] or '?':<24} {ban['expires_s']} s left")
    if data["rules"]:
        print("rules:")
        for line in data["rules"]:
            print(f"  {line}")


# --------------------------------------------------------------------------- allow / deny


def set_key(text: str, path: str, key: str, value: str) -> str:
    """`text` with `key` set to `value`: its line replaced in place, or appended."""
    entry = cnf.parse_text(text, path).get(key)
    line = cnf.render_line(key, value)
    if entry is None:
        sep = "" if text.endswith("\n") or not text else "\n"
        return f"{text}{sep}{line}\n"
    lines = text.splitlines(keepends=True)
    ending = "\n" if lines[entry.line - 1].endswith("\n") else ""
    lines[entry.line - 1] = line + ending
    return "".join(lines)


def _same(a: str, b: str) -> bool:
    return firewall.parse_entry(a) == firewall.parse_entry(b)


def edited(config: Config, add_to: str, remove_from: str, address: str) -> dict[str, str]:
    """The new values of both list keys: `address` added to one, removed from the other."""
    items = firewall.entries(str(config[add_to] or ""))
    if not any(_same(item, address) for item in items):
        items.append(address)
    others = [i for i in firewall.entries(str(config[remove_from] or ""))
              if not _same(i, address)]
    return {add_to: " ".join(items), remove_from: " ".join(others)}


def _normal(address: str) -> str:
    try:
        network = firewall.parse_entry(address)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return str(network.network_address) if network.prefixlen == network.max_prefixlen \
        else str(network)


def _change_lists(ctx: App, add_to: str, remove_from: str, address: str) -> None:
    path = resolve_path(ctx.config, ctx.root)
    config = load(path)
    runner = SubprocessRunner()
    facts = Facts(Target(ctx.root), runner)
    if not firewall.enabled(config, facts.distro.codename):
        raise UsageError("the firewall is off: add CSF (or NFT) to _XTRAS_LIST first")
    values = edited(config, add_to, remove_from, address)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    new = text
    for key, value in values.items():
        new = set_key(new, str(path), key, value)
    candidate = validate(cnf.parse_text(new, str(path)))
    firewall.Firewall.from_config(candidate, facts.distro.codename)  # a bad entry stops here
    if add_to == firewall.DENY_KEY:
        session = firewall.session_address()
        fw = firewall.Firewall.from_config(candidate, facts.distro.codename)
        problem = fw.refusal(session)
        if problem:
            raise UsageError(problem)
    if new != text:
        write_atomic(path, new.encode(), mode=0o600)
        ctx.say(f"{path}: {add_to}=\"{values[add_to]}\"")

    def only_firewall(cfg: Config, fcts: Facts, redactor: Redactor) -> list[Component]:
        return firewall.build_components(cfg, fcts)

    exit_on_failures(run_converge(replace(ctx.options, yes=True), ctx, "firewall",
                                  only_firewall))


@app.command(cls=opt.takes("root", "config", "quiet"))
def allow(ctx: typer.Context, address: str = ADDRESS) -> None:
    """Always let ADDRESS in and never ban it (_FIREWALL_ALLOW), at once."""
    normal = _normal(address)
    _change_lists(application(ctx), firewall.ALLOW_KEY, firewall.DENY_KEY, normal)
    if "/" not in normal:
        _unban(normal, quiet=True)


@app.command(cls=opt.takes("root", "config", "quiet"))
def deny(ctx: typer.Context, address: str = ADDRESS) -> None:
    """Always refuse ADDRESS (_FIREWALL_DENY), at once."""
    _change_lists(application(ctx), firewall.DENY_KEY, firewall.ALLOW_KEY, _normal(address))


# --------------------------------------------------------------------------- unban


def _unban(address: str, quiet: bool = False) -> bool:
    runner = SubprocessRunner()
    table = str(firewall.profile()["table"])
    family = "4" if ipaddress.ip_address(address).version == 4 else "6"
    lifted = runner.run(["fail2ban-client", "unban", address], check=False, timeout=60)
    was_f2b = lifted.ok and re.fullmatch(r"\s*0\s*", lifted.stdout) is None
    dropped = runner.run(["nft", "delete", "element", "inet", table, f"banned{family}",
                          f"{{ {address} }}"], check=False, timeout=30)
    if not quiet:
        print(f"{address}: " + ("unbanned" if was_f2b or dropped.ok else "was not banned"))
    return was_f2b or dropped.ok


@app.command()
def unban(address: str = ADDRESS) -> None:
    """Lift the ban of ADDRESS at once (every jail)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise UsageError(f'"{address}" is not an IPv4/IPv6 address') from None
    _unban(str(ip))
