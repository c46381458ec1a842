"""A hostile tenant on a fresh Debian 12 box with systemd (issue 12): three instances whose
names prefix each other (o1, o1x, o1-x), each with a site on a small PHP platform written
here, and attacks by o1 from its PHP (through Nginx) and from its shell login. Each attack
is its own assertion and must fail; a control next to each proves the path itself works (a
refused attack is told from a broken setup).

Holes covered here: 1 (symlinks served by Nginx), 5 (process launchers in PHP), 6 (logs
readable by other tenants), 7 (shared /tmp), and open_basedir. Holes 2-4 (database names,
grants by prefix, the shared Redis password) have their own section at the end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.box.boxes import Box
from tests.box.conftest import installed_box, octopus
from tests.box.test_install import REPO
from tests.box.test_nginx import CONFIG, Answer, fetch

PATHS = yaml.safe_load((REPO / "profiles" / "paths.yml").read_text())
OCTOPUS = yaml.safe_load((REPO / "profiles" / "octopus.yml").read_text())

# instance -> its site. The names prefix each other on purpose.
SITES = {"o1": "one.example.org", "o1x": "onex.example.org", "o1-x": "onedash.example.org"}
ATTACKER, VICTIM = "o1", "o1x"
PLATFORM = "/root/platform-hostile"
REDIS_PASSWORD = PATHS["health_secret"]
NGINX_CONF = f"{PATHS['nginx_dir']}/nginx.conf"
LAUNCHERS = ["exec", "shell_exec", "system", "passthru", "proc_open", "popen", "pcntl_exec"]

# The tenant's tool: one action per POST (the query string filter would refuse paths with
# dots), answered as JSON. A disabled function throws Error ("undefined function").
ATTACK_PHP = r"""<?php
header('Content-Type: application/json');
$do = $_POST['do'] ?? '';
$arg = $_POST['arg'] ?? '';
$out = ['do' => $do];
set_error_handler(function ($no, $str) use (&$out) { $out['warnings'][] = $str; return true; });
try {
    switch ($do) {
        case 'read':
            $data = file_get_contents($arg);
            $out['ok'] = $data !== false;
            $out['data'] = $data === false ? null : $data;
            break;
        case 'list':
            $list = scandir($arg);
            $out['ok'] = $list !== false;
            $out['data'] = $list;
            break;
        case 'write':  // a file of this pool's own, in its temporary directory
            $path = sys_get_temp_dir() . '/' . $arg;
            $out['ok'] = file_put_contents($path, 'TMP-SECRET-' . $arg) !== false;
            $out['data'] = $path;
            $out['tempnam'] = tempnam(sys_get_temp_dir(), 'x');
            $out['tmpdir'] = getenv('TMPDIR');
            break;
        case 'symlink':
            $out['ok'] = symlink($arg, $_SERVER['site_files'] . '/php-link.txt');
            break;
        case 'launch':
            switch ($arg) {
                case 'exec': $r = exec('id'); break;
                case 'shell_exec': $r = shell_exec('id'); break;
                case 'system': ob_start(); $r = system('id'); ob_end_clean(); break;
                case 'passthru': ob_start(); passthru('id'); $r = ob_get_clean(); break;
                case 'proc_open': $r = proc_open('id', [1 => ['pipe', 'w']], $pipes); break;
                case 'popen': $r = popen('id', 'r'); break;
                case 'pcntl_exec': $r = pcntl_exec('/usr/bin/id'); break;
                case 'backticks': $r = `id`; break;
            }
            $out['ok'] = true;  // reached only when the function ran
            break;
        case 'include':  // through OPcache, shared by every pool of this PHP version
            $r = include $arg;
            $out['ok'] = $r !== false;
            $out['data'] = is_string($r) ? $r : null;
            break;
        case 'widen':
            $out['ok'] = ini_set('open_basedir', '/') !== false;
            $out['data'] = ini_get('open_basedir');
            break;
        case 'whoami':
            $out['ok'] = true;
            $out['data'] = ['tmp' => sys_get_temp_dir(), 'basedir' => ini_get('open_basedir')];
            break;
    }
} catch (Throwable $e) {
    $out['ok'] = false;
    $out['error'] = get_class($e) . ': ' . $e->getMessage();
}
echo json_encode($out), "\n";
"""


def site_root(instance: str) -> str:
    return f"/data/disk/{instance}/platforms/hostile"


def files_dir(instance: str) -> str:
    return f"{site_root(instance)}/sites/{SITES[instance]}/files"


@pytest.fixture(scope="module")
def box(box_prereqs: None, request: pytest.FixtureRequest) -> Iterator[Box]:
    with installed_box(request.config, cnf=CONFIG) as installed:
        make_instances(installed)
        yield installed


def make_instances(box: Box) -> None:
    # The front controller answers / and, like any application, 404 for what it does not
    # know (a file Nginx refused to open is such a path).
    box.write_file(f"{PLATFORM}/index.php", "<?php if (parse_url($_SERVER['REQUEST_URI'], "
                   "PHP_URL_PATH) === '/') { echo 'INDEX'; } else { http_response_code(404); "
                   "echo 'NOT FOUND'; }\n")
    box.write_file(f"{PLATFORM}/attack.php", ATTACK_PHP)
    box.write_file(f"{PLATFORM}/css/real.css", "body { color: red; }\n")
    # A symbolic link the codebase ships (the copy makes it the instance's, as its target).
    box.run(["ln", "-s", "real.css", f"{PLATFORM}/css/link.css"])
    for instance, domain in SITES.items():
        octopus(box, "install", instance, "--email", "ops@example.org", "--yes")
        octopus(box, "platform", "add", instance, "hostile", "--path", PLATFORM, "--yes")
        octopus(box, "site", "add", instance, domain, "--platform", "hostile", "--type", "php",
                "--yes")
        # What another tenant must never see: code-side and private-side secrets.
        secret = f"SECRET-OF-{instance}"
        box.write_file(f"{site_root(instance)}/secret.txt", f"{secret}-CODE\n", 0o640)
        box.run(["chown", f"{instance}:{instance}", f"{site_root(instance)}/secret.txt"])
        box.write_file(f"{site_root(instance)}/secret.php",
                       f"<?php return '{secret}-INCLUDED';\n", 0o640)
        box.run(["chown", f"{instance}:{instance}", f"{site_root(instance)}/secret.php"])
        private = f"{site_root(instance)}/sites/{domain}/private/secret.txt"
        box.write_file(private, f"{secret}-PRIVATE\n", 0o640)
        box.run(["chown", f"{instance}.web:{instance}", private])
    for domain in SITES.values():  # a visit each, so every access log has a line
        fetch(box, domain, "/?visit=1")


def attack(box: Box, instance: str, do: str, arg: str = "") -> dict[str, Any]:
    """One action of `instance`'s PHP, through Nginx."""
    answer = fetch(box, SITES[instance], "/attack.php", args=(
        "-X", "POST", "--data-urlencode", f"do={do}", "--data-urlencode", f"arg={arg}"))
    assert answer.status == 200, (do, arg, answer.status, answer.body[:500])
    result: dict[str, Any] = json.loads(answer.body)
    return result


def shell(box: Box, user: str, *argv: str) -> tuple[int, str]:
    """`argv` as `user` (a tenant's shell login): exit code and output."""
    result = box.run(["runuser", "-u", user, "--", *argv], check=False)
    return result.returncode, result.stdout + result.stderr


def never_served(answer: Answer, *secrets: str) -> None:
    assert answer.status in (403, 404), (answer.status, answer.body[:300])
    for secret in secrets:
        assert secret not in answer.body


def redis_password(box: Box) -> str:
    return box.read_file(REDIS_PASSWORD).strip()


# -- Hole 1: symbolic links served by Nginx ---------------------------------------------------

def test_symlinks_of_one_owner_still_work(box: Box) -> None:
    """Control: the platform's own link, and a tenant's link to its own file, are served."""
    shipped = fetch(box, SITES[ATTACKER], "/css/link.css")
    assert (shipped.status, shipped.body) == (200, "body { color: red; }\n")
    own = f"{site_root(ATTACKER)}/own-link.txt"
    code, output = shell(box, ATTACKER, "ln", "-sf", "secret.txt", own)
    assert code == 0, output
    assert fetch(box, SITES[ATTACKER], "/own-link.txt").body == f"SECRET-OF-{ATTACKER}-CODE\n"


def test_php_cannot_plant_a_symlink(box: Box) -> None:
    result = attack(box, ATTACKER, "symlink", NGINX_CONF)
    assert result["ok"] is False and "undefined function symlink" in result["error"], result
    assert box.run(["test", "-L", f"{files_dir(ATTACKER)}/php-link.txt"],
                   check=False).returncode != 0


@pytest.mark.parametrize(("name", "target", "secret"), [
    ("nginx-conf", NGINX_CONF, "worker_processes"),
    ("redis-password", REDIS_PASSWORD, ""),  # the secret is read in the test
    ("other-code", f"{site_root(VICTIM)}/secret.txt", f"SECRET-OF-{VICTIM}-CODE"),
    ("other-private", f"{site_root(VICTIM)}/sites/{SITES[VICTIM]}/private/secret.txt",
     f"SECRET-OF-{VICTIM}-PRIVATE"),
    ("other-log", f"{PATHS['nginx_log_dir']}/{SITES[VICTIM]}.access.log", "visit=1"),
    ("other-vhost", f"/data/disk/{VICTIM}/config/server_master/nginx/vhost.d/"
     f"{SITES[VICTIM]}.conf", "db_passwd"),
])
@pytest.mark.parametrize("where", ["files", "root"])
def test_shell_symlink_to_another_owners_file_is_never_served(
        box: Box, name: str, target: str, secret: str, where: str) -> None:
    secrets = [secret or redis_password(box)]
    directory = files_dir(ATTACKER) if where == "files" else site_root(ATTACKER)
    link = f"{directory}/{name}.txt"
    code, output = shell(box, ATTACKER, "ln", "-sf", target, link)
    assert code == 0, output  # the tenant may make the link: Nginx must not follow it
    url = link.removeprefix(site_root(ATTACKER))
    never_served(fetch(box, SITES[ATTACKER], url), *secrets)


def test_symlinked_directory_of_another_instance_is_never_served(box: Box) -> None:
    link = f"{site_root(ATTACKER)}/theirs"
    code, output = shell(box, ATTACKER, "ln", "-sfn", site_root(VICTIM), link)
    assert code == 0, output
    never_served(fetch(box, SITES[ATTACKER], "/theirs/secret.txt"), f"SECRET-OF-{VICTIM}")
    etc = f"{files_dir(ATTACKER)}/etc"
    assert shell(box, ATTACKER, "ln", "-sfn", "/etc/nginx", etc)[0] == 0
    never_served(fetch(box, SITES[ATTACKER], f"/sites/{SITES[ATTACKER]}/files/etc/nginx.conf"),
                 "worker_processes")


def test_hard_link_to_a_file_of_another_owner_is_refused(box: Box) -> None:
    link = f"{files_dir(ATTACKER)}/hard.txt"
    code, _ = shell(box, ATTACKER, "ln", NGINX_CONF, link)
    assert code != 0  # fs.protected_hardlinks: not the tenant's file
    never_served(fetch(box, SITES[ATTACKER], f"/sites/{SITES[ATTACKER]}/files/hard.txt"),
                 "worker_processes")


# -- Hole 5: process launchers in PHP -----------------------------------------------------------

@pytest.mark.parametrize("launcher", [*LAUNCHERS, "backticks"])
def test_php_cannot_start_a_process(box: Box, launcher: str) -> None:
    result = attack(box, ATTACKER, "launch", launcher)
    assert result["ok"] is False, result
    assert "undefined function" in result["error"], result


def test_the_command_line_is_not_restricted(box: Box) -> None:
    """Drush and cron run `php` as the instance's user: the pool's limits are not theirs."""
    code, output = shell(box, ATTACKER, "php", "-r", "echo exec('echo launched'), \"\\n\";")
    assert (code, output) == (0, "launched\n")


# -- Hole 6: logs ------------------------------------------------------------------------------

def test_another_instances_access_log_is_unreadable(box: Box) -> None:
    log = f"{PATHS['nginx_log_dir']}/{SITES[VICTIM]}.access.log"
    assert "visit=1" in box.read_file(log)  # control: the line is there
    code, output = shell(box, ATTACKER, "cat", log)
    assert code != 0 and "visit=1" not in output
    code, output = shell(box, ATTACKER, "ls", PATHS["nginx_log_dir"])
    assert code != 0 and SITES[VICTIM] not in output
    result = attack(box, ATTACKER, "read", log)
    assert result["ok"] is False and not result.get("data"), result


def test_php_slow_logs_are_unreadable(box: Box) -> None:
    code, output = shell(box, ATTACKER, "ls", PATHS["php_log_dir"])
    assert code != 0 and VICTIM not in output


# -- Hole 7: temporary files --------------------------------------------------------------------

def test_each_pool_has_its_own_temporary_directory(box: Box) -> None:
    for instance in SITES:
        tmp = f"/data/disk/{instance}/tmp"
        result = attack(box, instance, "write", "probe")
        assert result["ok"] is True and result["data"] == f"{tmp}/probe", result
        assert result["tempnam"].startswith(f"{tmp}/") and result["tmpdir"] == tmp, result


def test_a_pools_temporary_files_are_unreadable_by_another_pool(box: Box) -> None:
    written = attack(box, VICTIM, "write", "victim-secret")
    assert written["ok"] is True
    theirs = attack(box, ATTACKER, "read", written["data"])
    assert theirs["ok"] is False and not theirs.get("data"), theirs
    assert attack(box, ATTACKER, "list", f"/data/disk/{VICTIM}/tmp")["ok"] is False
    code, output = shell(box, ATTACKER, "cat", written["data"])
    assert code != 0 and "TMP-SECRET" not in output
    # /tmp is not a way round: the pools cannot reach it at all.
    assert attack(box, ATTACKER, "read", "/tmp")["ok"] is False
    assert attack(box, ATTACKER, "list", "/tmp")["ok"] is False


# -- open_basedir ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    f"{site_root(VICTIM)}/secret.txt", f"{site_root(VICTIM)}/attack.php", "/etc/passwd",
    NGINX_CONF, REDIS_PASSWORD, f"/root/.{VICTIM}.octopus.cnf",
    f"/data/disk/{ATTACKER}/config/sites/{SITES[ATTACKER]}.yml",
])
def test_open_basedir_holds(box: Box, path: str) -> None:
    result = attack(box, ATTACKER, "read", path)
    assert result["ok"] is False and not result.get("data"), result
    assert any("open_basedir" in w for w in result.get("warnings", [])), result


def test_open_basedir_cannot_be_widened(box: Box) -> None:
    mine = attack(box, ATTACKER, "whoami")["data"]["basedir"]
    assert mine.startswith(f"/data/disk/{ATTACKER}/") and f"/data/disk/{VICTIM}/" not in mine
    result = attack(box, ATTACKER, "widen")
    assert result["data"] == mine, result
    assert attack(box, ATTACKER, "list", "/data/disk")["ok"] is False
    # Control: its own tree is readable.
    assert attack(box, ATTACKER, "read", f"{site_root(ATTACKER)}/secret.txt")["ok"] is True


def test_a_script_cached_for_one_pool_is_not_served_to_another(box: Box) -> None:
    # One OPcache serves every pool of a PHP version: the victim's own include caches its
    # script; the attacker naming the same path must still be refused (PHP bug #69090).
    path = f"{site_root(VICTIM)}/secret.php"
    own = attack(box, VICTIM, "include", path)
    assert own["ok"] is True and own["data"] == f"SECRET-OF-{VICTIM}-INCLUDED", own
    theirs = attack(box, ATTACKER, "include", path)
    assert theirs["ok"] is False and not theirs.get("data"), theirs


# -- Holes 2-4: databases and Redis ----------------------------------------------------------
# Database name collisions between instances whose names prefix each other (o1's site
# x.q.test and o1-x's site q.test), grants by name prefix (o1\_% covering o1-x's o1_x_*),
# and one Redis password for every tenant belong to the database and Redis work (issue 12,
# holes 2, 3 and 4). Their attacks go here, on the same three instances: from o1's PHP and
# shell, with its own credentials, against o1x's and o1-x's databases and Redis keys.


def tenant_sql(box: Box, instance: str, query: str) -> tuple[int, str]:
    """`query` as `instance`'s shell login, with the instance's own database account."""
    return shell(box, instance, "mariadb", f"--defaults-file=/data/disk/{instance}/.my.cnf",
                 "-N", "-e", query)


def test_the_instance_account_sees_only_its_own_databases(box: Box) -> None:
    """Hole 3: o1's account held ALL on `o1\\_%`, which also covers o1-x's o1_x_* databases."""
    rc, listed = tenant_sql(box, ATTACKER, "SHOW DATABASES")
    assert rc == 0, listed  # control: the account works
    own = "o1_one_example_org"
    assert own in listed.split()
    victims = ["o1_x_onedash_example_org", "o1x_onex_example_org"]
    for victim in victims:
        assert victim not in listed.split(), listed
        for query in (f"SHOW TABLES FROM `{victim}`", f"USE `{victim}`",
                      f"DROP DATABASE `{victim}`", f"CREATE TABLE `{victim}`.t (i INT)"):
            rc, out = tenant_sql(box, ATTACKER, query)
            assert rc != 0 and "denied" in out, (query, out)
    for name in ("o1_x_new", "o1_new", "o1x_new"):
        rc, out = tenant_sql(box, ATTACKER, f"CREATE DATABASE `{name}`")
        assert rc != 0 and "denied" in out, (name, out)
    rows = box.run(["mariadb", "-N", "-e", "SHOW DATABASES"]).stdout.split()
    assert all(victim in rows for victim in victims)  # nothing was dropped
    # Control: o1 still uses its own database.
    rc, out = tenant_sql(box, ATTACKER, f"CREATE TABLE `{own}`.t (i INT); DROP TABLE `{own}`.t")
    assert rc == 0, out


def test_a_colliding_site_name_cannot_take_another_instances_database(box: Box) -> None:
    """Hole 2: o1-x's q.example.org and o1's x.q.example.org both map to o1_x_q_example_org;
    the second site add must be refused and leave the first one's database and account."""
    octopus(box, "site", "add", "o1-x", "q.example.org", "--platform", "hostile", "--type",
            "php", "--yes")
    before = box.run(["mariadb", "-N", "-e",
                      "SELECT User, JSON_VALUE(Priv, '$.authentication_string') FROM "
                      "mysql.global_priv WHERE User LIKE 'o1%' ORDER BY User"]).stdout
    taken = octopus(box, "site", "add", ATTACKER, "x.q.example.org", "--platform", "hostile",
                    "--type", "php", "--yes", check=False)
    assert taken.returncode == 3, taken.stderr
    lines = taken.stderr.strip().splitlines()
    assert len(lines) == 1 and "o1_x_q_example_org" in lines[0] and "o1-x" in lines[0], lines
    after = box.run(["mariadb", "-N", "-e",
                     "SELECT User, JSON_VALUE(Priv, '$.authentication_string') FROM "
                     "mysql.global_priv WHERE User LIKE 'o1%' ORDER BY User"]).stdout
    assert after == before  # no password was reset
    assert "x.q.example.org" not in box.run(["octopus", "site", "list", ATTACKER]).stdout
    assert fetch(box, "q.example.org", "/").status == 200
