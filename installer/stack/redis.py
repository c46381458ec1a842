"""Redis: loopback and a unix socket only, a kept generated password, maxmemory from RAM."""

from __future__ import annotations

import time
from collections.abc import Callable

from installer.plan import Component
from installer.resources.base import Context, Resource, restart
from installer.resources.files import File
from installer.resources.system import Service
from installer.stack.context import StackContext


def pong(socket: str, password: str) -> Callable[[Context], str | None]:
    def probe(ctx: Context) -> str | None:
        output = ""
        for _ in range(60):
            result = ctx.runner.run(["redis-cli", "-s", socket, "ping"], check=False,
                                    env={"REDISCLI_AUTH": password}, timeout=10)
            output = result.output
            if result.ok and output == "PONG":
                return None
            time.sleep(0.5)
        return f"redis-cli -s {socket} ping answered {output!r}"

    return probe


def component(stack: StackContext) -> Component:
    service = stack.release.service("redis")
    resources: list[Resource] = [
        File("/etc/redis/redis.conf", template="redis/redis.conf.j2",
             context=stack.template_context(), owner="redis", fgroup="redis", mode=0o640,
             secret=True, notify=(restart(service),), requires=("packages:stack",)),
        Service(service, requires=("packages:stack",)),
    ]
    return Component("redis", resources,
                     health=[pong(stack.paths["redis_socket"], stack.redis_password)])
