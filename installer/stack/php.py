"""PHP-FPM, one component per installed version: php-fpm.conf, the master pool, php.ini
drop-ins for FPM and CLI; `php-fpmX.Y -t` validates before any reload."""

from __future__ import annotations

from collections.abc import Callable

from installer.plan import Component, Validator
from installer.resources.base import Context, Resource, reload
from installer.resources.files import Directory, File
from installer.resources.system import Command, Service
from installer.stack.context import StackContext


def cli_is(version: str) -> Callable[[Context], bool]:
    def done(ctx: Context) -> bool:
        target = ctx.target.path("/usr/bin/php")
        return target.exists() and target.resolve().name == f"php{version}"

    return done


def web_user_in_redis_group(ctx: Context) -> bool:
    """The PHP workers (www-data) reach Redis through its 0770 socket."""
    result = ctx.runner.run(["id", "-nG", "www-data"], check=False, timeout=30)
    return "redis" in result.stdout.split()


def component(stack: StackContext, version: str) -> Component:
    paths = stack.paths
    service = stack.release.service("php", version)
    etc = f"{paths['php_etc_dir']}/{version}"
    notify = (reload(service),)
    after = ("packages:stack",)
    context = stack.template_context(version)
    resources: list[Resource] = [
        # Slow logs hold the tenants' stack traces: root and adm only (the FPM master, root,
        # writes them).
        Directory(paths["php_log_dir"], mode=0o750, fgroup="adm"),
        File(f"{etc}/fpm/php-fpm.conf", template="php/php-fpm.conf.j2", context=context,
             notify=notify, requires=after, comment=";"),
        File(f"{etc}/fpm/pool.d/www.conf", template="php/pool-master.conf.j2", context=context,
             notify=notify, requires=after, comment=";"),
        File(f"{etc}/fpm/opcache-blacklist.txt", template="php/opcache-blacklist.txt.j2",
             context=context, notify=notify, requires=after, comment=";"),
        File(f"{etc}/fpm/conf.d/90-barracuda.ini", template="php/php.ini.j2", context=context,
             notify=notify, requires=(*after, f"file:{etc}/fpm/opcache-blacklist.txt"),
             comment=";"),
        File(f"{etc}/cli/conf.d/90-barracuda.ini", template="php/php-cli.ini.j2",
             context=context, requires=after, comment=";"),
        Service(service, requires=after),
    ]
    return Component(
        f"php{version}", resources,
        validators=[Validator([stack.release.fpm_binary(version), "-t"], f"php-fpm{version} -t")],
    )


def cli_component(stack: StackContext) -> Component:
    """/usr/bin/php -> the CLI version chosen by _PHP_CLI_VERSION, and the web user's access
    to Redis (a group change needs new FPM workers: the pools reload)."""
    reloads = tuple(reload(stack.release.service('php', v)) for v in stack.php_versions)
    return Component("php-cli", [
        File("/etc/logrotate.d/barracuda-php", template="base/logrotate-php.j2",
             context=stack.template_context()),
        Command("php-cli", ["update-alternatives", "--set", "php", f"/usr/bin/php{stack.php_cli}"],
                done=cli_is(stack.php_cli), why=f"/usr/bin/php is not PHP {stack.php_cli}"),
        Command("www-data-in-redis", ["usermod", "-a", "-G", "redis", "www-data"],
                done=web_user_in_redis_group, why="www-data is not in the redis group",
                notify=reloads),
    ])
