"""The limited shell of the tenant accounts (oN.ftp, oN.NAME): their login shell, started by
sshd for an interactive session (`-octopus-shell`), for a command (`-c LINE`: ssh host CMD,
rsync, git over SSH) and for SFTP (`-c /usr/lib/openssh/sftp-server`).

No shell ever reads a line: it is split like a shell's words (quotes only), and runs when
* it has none of the forbidden characters (; & | $ ` < > ( ) { } \\ ! newline),
* its first word is a command of the allow-list (profiles/access.yml), not a path, not an
  assignment (VAR=value), and its program is installed,
* none of its words is an option the command refuses (those that start a program or leave
  the paths: find -exec, tar --to-command, rsync -e, git -c ...), and git's or composer's
  subcommand is one of theirs,
* every word that names a path resolves (symbolic links followed) inside the account's
  paths: its home and its sites' directories (oN.ftp: the instance's platforms/ and
  static/); a glob is expanded here and each match checked the same way.
The program then runs with an environment of our own (nothing the client sent), git
without the user's or system's configuration, hooks, pager, editor or SSH. Every refusal is
printed, logged to syslog (authpriv, ident octopus-shell) and exits 126. Drush is built in:
`drush @DOMAIN VERB` for the account's own sites, through the helper that sudo lets start
(installer/octopus/shell_drush.py). The boundary stays Unix permissions and ACLs: this shell
only keeps a tenant to what it was given, and says so when it tries anything else."""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shlex
import subprocess
import sys
import syslog
from dataclasses import dataclass, field
from typing import Any

from installer.data import load_profile

REFUSED = 126
GLOB = re.compile(r"[*?\[]")


class Refused(Exception):
    """A line the shell does not run; the message says why."""


@dataclass
class Session:
    user: str
    account: dict[str, Any]
    prof: dict[str, Any]
    cwd: str = ""
    roots: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.roots = [os.path.realpath(r) for r in self.account["roots"]]
        self.cwd = self.home if os.path.isdir(self.home) else "/"

    @property
    def home(self) -> str:
        return str(self.account["home"])

    @property
    def shell(self) -> dict[str, Any]:
        shell: dict[str, Any] = self.prof["shell"]
        return shell

    # -- paths -------------------------------------------------------------------------

    def inside(self, path: str) -> bool:
        real = os.path.realpath(os.path.join(self.cwd, path))
        return any(real == root or real.startswith(root + "/") for root in self.roots)

    def expand(self, word: str) -> list[str]:
        """`word` with ~ and globs expanded; every path checked."""
        if word.startswith("~"):
            if word != "~" and not word.startswith("~/"):
                raise Refused(f"{word}: other users' homes are not reachable")
            word = self.home + word[1:]
        if GLOB.search(word):
            matches = sorted(glob.glob(word, root_dir=self.cwd if not word.startswith("/")
                                       else None))
            words = matches or [word]
        else:
            words = [word]
        for each in words:
            self.check_path(each)
        return words

    def check_path(self, word: str) -> None:
        if not word or word.startswith("-"):
            return
        if not self.inside(word):
            raise Refused(f"{word}: outside this account's paths")

    # -- the line ----------------------------------------------------------------------

    def words(self, line: str) -> list[str]:
        bad = sorted({c for c in line if c in self.shell["forbidden_characters"]})
        if bad:
            shown = " ".join(repr(c)[1:-1] for c in bad)
            raise Refused(f"shell syntax is not accepted here ({shown})")
        try:
            return shlex.split(line, comments=False, posix=True)
        except ValueError as exc:
            raise Refused(f"cannot read the line: {exc}") from None

    def command(self, words: list[str]) -> list[str]:
        """The argv to run for `words`; Refused when it may not run."""
        name, args = words[0], words[1:]
        if "=" in name:
            raise Refused("setting environment variables is not accepted")
        spec = self.shell["commands"].get(name)
        if spec is None or "/" in name:
            raise Refused(f"{name}: command not allowed (type help)")
        program = str(spec["program"])
        if not os.access(program, os.X_OK):
            raise Refused(f"{name}: not installed on this server")
        refuse = [str(r) for r in spec.get("refuse", ())]
        server = name == "rsync" and args[:1] == ["--server"]
        if server:  # the far side of `rsync ... host:path`: -e is its capability string
            refuse = [r for r in refuse if r != "-e"]
        for word in args:
            if word != "--":
                refused_option(name, word, refuse)
        subcommands = spec.get("subcommands")
        if subcommands is not None:
            sub = next((w for w in args if not w.startswith("-")), "")
            if sub not in subcommands:
                raise Refused(f"{name} {sub or '(no subcommand)'}: not allowed here; "
                              f"allowed: {' '.join(subcommands)}")
        if name == "rsync" and not server:
            remote = [w for w in args if not w.startswith("-") and re.match(r"[^/]*:", w)]
            if remote:
                raise Refused(f"rsync {remote[0]}: only paths on this server (rsync from "
                              "your side over SSH instead)")
        argv = [program]
        for word in args:
            if word.startswith("-"):
                _, eq, value = word.partition("=")
                if eq and ("/" in value or value.startswith(".")):
                    self.check_path(value)
                argv.append(word)
            else:
                argv += self.expand(word)
        return argv + [str(a) for a in spec.get("append", ())]

    def environment(self) -> dict[str, str]:
        term = os.environ.get("TERM", "dumb")
        git = {str(k): str(v) for k, v in self.shell["git_config"].items()}
        env = {"PATH": str(self.shell["path"]), "HOME": self.home, "USER": self.user,
               "LOGNAME": self.user, "LANG": "C.UTF-8",
               "TERM": term if re.fullmatch(r"[A-Za-z0-9.+-]{1,32}", term) else "dumb",
               "PAGER": "cat", "GIT_PAGER": "cat", "EDITOR": "false", "VISUAL": "false",
               "GIT_EDITOR": "false", "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_GLOBAL": str(self.prof["gitconfig"]), "GIT_TERMINAL_PROMPT": "0",
               "GIT_SSH_COMMAND": "false", "GIT_ALLOW_PROTOCOL": "https",
               "COMPOSER_HOME": f"{self.home}/.composer", "GIT_CONFIG_COUNT": str(len(git))}
        for index, (key, value) in enumerate(git.items()):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        return env

    # -- built-ins ---------------------------------------------------------------------

    def cd(self, args: list[str]) -> int:
        if len(args) > 1:
            raise Refused("cd: one directory at most")
        target = self.expand(args[0])[0] if args else self.home
        real = os.path.realpath(os.path.join(self.cwd, target))
        if not os.path.isdir(real):
            print(f"cd: {target}: no such directory", file=sys.stderr)
            return 1
        self.cwd = real
        return 0

    def help(self) -> int:
        names = sorted(n for n, s in self.shell["commands"].items()
                       if os.access(str(s["program"]), os.X_OK))
        print("commands: " + " ".join(["cd", "pwd", "drush", "exit", *names]))
        print("paths: " + " ".join(self.account["roots"]))
        print("drush @DOMAIN " + "|".join(sorted(set(self.shell["drush_verbs"].values())))
              + "   sites: " + (" ".join(sorted(self.account["sites"])) or "none"))
        return 0

    def drush(self, args: list[str]) -> list[str] | int:
        sites = self.account["sites"]
        if args[:1] in (["sa"], ["site:alias"], ["site-alias"]):
            for domain in sorted(sites):
                print(f"@{domain}  root {sites[domain]['root']}  uri {sites[domain]['uri']}")
            return 0
        if len(args) != 2 or not args[0].startswith("@"):
            raise Refused("drush: use drush @DOMAIN VERB (verbs: "
                          + " ".join(sorted(set(self.shell["drush_verbs"].values()))) + ")")
        domain, verb = args[0][1:].lower(), args[1]
        if domain not in sites:
            raise Refused(f"drush: @{domain} is not a site of this account")
        if verb not in self.shell["drush_verbs"]:
            raise Refused(f"drush {verb}: not allowed here")
        return ["/usr/bin/sudo", "-n", str(self.prof["drush_helper"]), domain,
                str(self.shell["drush_verbs"][verb])]

    # -- running -----------------------------------------------------------------------

    def line(self, line: str, replace_process: bool = False) -> int:
        words = self.words(line)
        if not words:
            return 0
        name, args = words[0], words[1:]
        argv: list[str] | int
        if name in ("exit", "logout"):
            raise SystemExit(0)
        if name == "pwd":
            print(self.cwd)
            return 0
        if name == "cd":
            return self.cd(args)
        if name == "help":
            return self.help()
        argv = self.drush(args) if name == "drush" else self.command(words)
        if isinstance(argv, int):
            return argv
        log(syslog.LOG_INFO, f"{self.user} runs: {shlex.join(words)}")
        if replace_process:
            os.chdir(self.cwd)
            os.execve(argv[0], argv, self.environment())
        try:
            return subprocess.run(argv, cwd=self.cwd, env=self.environment(),
                                  check=False).returncode
        except KeyboardInterrupt:
            return 130


def refused_option(name: str, word: str, refuse: list[str]) -> None:
    """Refused when `word` is (or bundles, or sets) an option `name` refuses."""
    for option in refuse:
        if option.startswith("--"):
            hit = word == option or word.startswith(option + "=")
        elif len(option) == 2:  # -e: alone, attached (-ecmd) or in a bundle (-avze)
            hit = (word.startswith(option) or (
                word.startswith("-") and not word.startswith("--")
                and option[1] in word[1:].split("=", 1)[0] and word[1:].isalpha()))
        else:  # find's single-dash words (-exec)
            hit = word == option
        if hit:
            raise Refused(f"{name} {option}: refused here (it could start a program or "
                          "leave your paths)")


def log(priority: int, message: str) -> None:
    syslog.syslog(priority | syslog.LOG_AUTHPRIV, message)


def refuse(session_user: str, line: str, why: str) -> int:
    log(syslog.LOG_WARNING, f"{session_user} refused ({why}): {line[:500]!r}")
    print(f"refused: {why}", file=sys.stderr)
    return REFUSED


def open_session(prof: dict[str, Any]) -> Session | None:
    user = pwd.getpwuid(os.getuid()).pw_name
    path = f"{prof['access_dir']}/{user}/account.json"
    try:
        with open(path, encoding="utf-8") as handle:
            account = json.load(handle)
    except (OSError, ValueError):
        log(syslog.LOG_WARNING, f"{user} has no access map {path}")
        print("this account has no access configured; ask the server's operator",
              file=sys.stderr)
        return None
    return Session(user, account, prof)


def interactive(session: Session) -> int:
    print(f"{session.user}: limited shell; type help for the commands")
    status = 0
    while True:
        try:
            shown = session.cwd.replace(session.home, "~", 1)
            text = input(f"{session.user}:{shown}$ ")
        except EOFError:
            print()
            return status
        except KeyboardInterrupt:
            print()
            continue
        try:
            status = session.line(text)
        except Refused as why:
            status = refuse(session.user, text, str(why))


def main(argv: list[str]) -> int:
    prof = load_profile("access")
    syslog.openlog(str(prof["shell"]["syslog_ident"]), syslog.LOG_PID, syslog.LOG_AUTHPRIV)
    session = open_session(prof)
    if session is None:
        return 1
    if len(argv) == 3 and argv[1] == "-c":
        text = argv[2]
        if text.strip() in prof["sftp_server"]:
            server = text.strip()
            log(syslog.LOG_INFO, f"{session.user} starts SFTP")
            os.chdir(session.cwd)
            os.execve(server, [server], session.environment())
        try:
            return session.line(text, replace_process=True)
        except Refused as why:
            return refuse(session.user, text, str(why))
    if len(argv) == 1:
        return interactive(session)
    return refuse(session.user, " ".join(argv[1:]), "only -c COMMAND is accepted")
