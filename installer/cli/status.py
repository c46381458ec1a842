"""`barracuda status`: the machine, its services and the last runs, read-only."""

from __future__ import annotations

from installer import __version__
from installer.cli.app import App
from installer.converge import open_session
from installer.lock import LOCK_FILE, holder, is_held
from installer.plan import Builder
from installer.resources.system import Service
from installer.runlog import LOG_DIR
from installer.services import manager_for


def status_report(app: App, build: Builder) -> None:
    session = open_session(app.options, app)
    facts, target = session.facts, session.target
    components = build(session.config, facts, session.redactor)
    manager = manager_for(facts.init_system, session.runner, target)
    services: dict[str, dict[str, bool | None]] = {}
    for component in components:
        for resource in component.resources:
            if isinstance(resource, Service):
                services[resource.name] = {
                    "running": manager.is_running(resource.name) if manager else None,
                    "enabled": manager.is_enabled(resource.name) if manager else None,
                }
    versions = target.path(LOG_DIR) / "versions.log"
    history = versions.read_text().splitlines()[-3:] if versions.is_file() else []
    lock = target.path(LOCK_FILE)
    held = is_held(lock)
    report = {
        "barracuda": __version__,
        "distro": str(facts.distro),
        "init": facts.init_system,
        "cpus": facts.cpus,
        "ram_mib": facts.ram_mib,
        "config": {"path": session.config.path, "exists": session.config.exists},
        "services": services,
        "last_runs": history,
        "lock": {"held": held, "pid": holder(lock) if held else None},
    }
    if app.json:
        app.emit_json(report)
        return
    print(f"barracuda {__version__} on {facts.distro}, init {facts.init_system}, "
          f"{facts.cpus} CPUs, {facts.ram_mib} MiB RAM")
    print(f"config: {session.config.path}" + ("" if session.config.exists else " (missing)"))
    print("services:")
    for name, state in services.items():
        if state["running"] is None:
            print(f"  {name:<16} unknown (--root)")
        else:
            running = "running" if state["running"] else "STOPPED"
            enabled = "enabled" if state["enabled"] else "not enabled"
            print(f"  {name:<16} {running}, {enabled}")
    print("last runs:" + ("" if history else " none"))
    for line in history:
        print(f"  {line}")
    print(f"lock: held by PID {holder(lock)}" if held else "lock: free")
