"""The FTP xtra: Debian's pure-ftpd for the tenants' FTPS logins, configured through Debian's
layout (one file per directive in /etc/pure-ftpd/conf, read by pure-ftpd-wrapper).

* TLS is required for the login and for the data (TLS 3): a clear login is refused.
* The certificate is the machine's kept one (the self-signed wildcard of the Nginx
  component), copied with its key into the one file pure-ftpd reads.
* Logins come only from a PureDB built from the accounts `octopus client passwd` gave a
  password (installer/octopus/ftp_password.py): PAM and Unix logins are off, so root and the
  system's users have no way in; every login is chrooted to its home.
* The passive range is profiles/firewall.yml's, which the firewall opens when it is on."""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from installer.config import Config
from installer.config.xtras import select
from installer.data import load_profile
from installer.fileops import write_atomic
from installer.plan import Component, Validator
from installer.resources.base import Change, Context, Resource, restart
from installer.resources.files import Directory, File, Symlink
from installer.resources.system import Service
from installer.stack.context import StackContext

CODE = "FTP"  # the _XTRAS_LIST code
AUTH_LINK = "50pure"  # /etc/pure-ftpd/auth/50pure -> ../conf/PureDB


def profile() -> dict[str, Any]:
    return load_profile("ftp")


def enabled(config: Config, release: str) -> bool:
    return CODE in select(config["_XTRAS_LIST"], release).codes


def ports() -> tuple[int, tuple[int, int]]:
    """The control port and the passive range (profiles/firewall.yml `ftp`)."""
    ftp = load_profile("firewall")["ftp"]
    low, high = (int(p) for p in ftp["passive"])
    return int(ftp["control"][0]), (low, high)


def directives() -> dict[str, str]:
    """Every file of /etc/pure-ftpd/conf we write: name -> its one line."""
    prof = profile()
    _, (low, high) = ports()
    conf = {str(k): str(v) for k, v in prof["conf"].items()}
    conf["PureDB"] = str(prof["puredb"])
    conf["PassivePortRange"] = f"{low} {high}"
    return dict(sorted(conf.items()))


def defaults_text() -> str:
    prof = profile()
    return (f"STANDALONE_OR_INETD={'standalone' if prof['standalone'] else 'inetd'}\n"
            f"VIRTUALCHROOT={'true' if prof['virtualchroot'] else 'false'}\n"
            "UPLOADSCRIPT=\nUPLOADUID=\nUPLOADGID=\n")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class CertificateBundle(Resource):
    """`dest` (0600) holds the key and the certificate of `key` and `cert`, as they are now:
    read when checked, so a renewed or replaced machine certificate is followed."""

    dest: str
    key: str
    cert: str

    @property
    def id(self) -> str:
        return f"bundle:{self.dest}"

    @property
    def ok_reason(self) -> str:
        return f"the key and certificate of {self.cert}, mode 0600"

    def _wanted(self, ctx: Context) -> bytes | None:
        key, cert = ctx.target.path(self.key), ctx.target.path(self.cert)
        if not (key.is_file() and cert.is_file()):
            return None
        return key.read_bytes().rstrip(b"\n") + b"\n" + cert.read_bytes()

    def paths(self, ctx: Context) -> list[str]:
        return [self.dest]

    def check(self, ctx: Context) -> list[Change]:
        wanted = self._wanted(ctx)
        if wanted is None:
            return [self.live_change(ctx, "create", f"{self.cert} is not made yet")]
        facts = ctx.facts.file(self.dest)
        if not facts.exists:
            return [self.change("create", "missing")]
        if facts.sha256 != _sha(wanted):
            return [self.change("update", f"differs from {self.cert} and its key")]
        if facts.mode != 0o600 or facts.uid != 0:
            return [self.change("chmod", "mode 0600, owner root")]
        return []

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        wanted = self._wanted(ctx)
        if wanted is None:
            return  # under --root: the certificate itself is only planned
        write_atomic(ctx.target.path(self.dest), wanted, mode=0o600, uid=0, gid=0)


@dataclass
class PureDb(Resource):
    """The logins database built from the text file (`pure-pw mkdb`) whenever the file
    changed since the last build; an empty file (no login at all) is made when there is
    none, as pure-ftpd-wrapper refuses to start without the database."""

    changes_environment = True

    passwd: str
    pdb: str
    stamp: str

    @property
    def id(self) -> str:
        return f"puredb:{self.pdb}"

    @property
    def ok_reason(self) -> str:
        return f"built from {self.passwd}"

    def paths(self, ctx: Context) -> list[str]:
        return [self.passwd, self.pdb, self.stamp]

    def _source_sha(self, ctx: Context) -> str:
        path = ctx.target.path(self.passwd)
        return _sha(path.read_bytes()) if path.is_file() else _sha(b"")

    def check(self, ctx: Context) -> list[Change]:
        if not ctx.target.path(self.passwd).is_file():
            return [self.live_change(ctx, "build", "no logins yet: an empty database")]
        stamp = ctx.target.path(self.stamp)
        built = stamp.read_text().strip() if stamp.is_file() else ""
        if not ctx.target.path(self.pdb).is_file() or built != self._source_sha(ctx):
            return [self.live_change(ctx, "build", f"{self.passwd} changed since the last "
                                                   "build")]
        return []

    def apply(self, ctx: Context, changes: list[Change]) -> None:
        if not ctx.target.live:
            return
        passwd = ctx.target.path(self.passwd)
        if not passwd.is_file():
            write_atomic(passwd, b"", mode=0o600)
            ctx.state.record(self.passwd, _sha(b""))  # ours: the logins file replaces it
        ctx.runner.run(["pure-pw", "mkdb", self.pdb, "-f", self.passwd], timeout=120)
        write_atomic(ctx.target.path(self.stamp), (self._source_sha(ctx) + "\n").encode(),
                     mode=0o600)


def puredb(after: tuple[str, ...] = ()) -> PureDb:
    prof = profile()
    return PureDb(str(prof["passwd"]), str(prof["puredb"]), str(prof["puredb_stamp"]),
                  requires=after, notify=())


def _reply(stream: BinaryIO) -> str:
    """One FTP reply (the last line of a multi-line one)."""
    line = stream.readline().decode("utf-8", "replace")
    code = line[:3]
    if line[3:4] == "-":
        while not (line.startswith(code) and line[3:4] == " "):
            line = stream.readline().decode("utf-8", "replace")
            if not line:
                break
    return line.strip()


def tls_required(cert: str, attempts: int = 20) -> Callable[[Context], str | None]:
    """Health: the server answers on the control port, refuses a clear login, and shows
    the machine's certificate after AUTH TLS."""

    def probe(ctx: Context) -> str | None:
        port, _ = ports()
        problem = "no answer"
        for _ in range(attempts):
            try:
                return _probe(port, ctx.target.path(cert).read_text())
            except (OSError, ssl.SSLError, ValueError) as exc:
                problem = str(exc) or type(exc).__name__
            time.sleep(0.5)
        return f"127.0.0.1:{port}: {problem}"

    return probe


def _probe(port: int, cert_pem: str) -> str | None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        stream = sock.makefile("rb")
        greeting = _reply(stream)
        if not greeting.startswith("220"):
            return f"greeting {greeting!r}"
        sock.sendall(b"USER barracuda-health\r\n")
        answer = _reply(stream)
        if answer[:1] not in ("4", "5"):  # 421 (reconnect with TLS) or 530
            return f"a clear login is not refused: {answer!r}"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        stream = sock.makefile("rb")
        _reply(stream)
        sock.sendall(b"AUTH TLS\r\n")
        answer = _reply(stream)
        if not answer.startswith("234"):
            return f"AUTH TLS answered {answer!r}"
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(sock) as tls:
            shown = tls.getpeercert(binary_form=True)
        if shown != ssl.PEM_cert_to_DER_cert(cert_pem):
            return "the certificate shown is not the machine's"
    return None


def component(stack: StackContext) -> Component:
    prof = profile()
    service = str(prof["service"])
    notify = (restart(service),)
    after = ("packages:base",)
    conf_dir, auth_dir = str(prof["conf_dir"]), str(prof["auth_dir"])
    cert, key = stack.paths["ssl_wildcard_cert"], stack.paths["ssl_wildcard_key"]
    resources: list[Resource] = [
        File(str(prof["defaults_file"]), content=defaults_text(), notify=notify,
             requires=after),
        Directory(conf_dir, mode=0o755),
        *(File(f"{conf_dir}/{name}", content=f"{value}\n", notify=notify, requires=after)
          for name, value in directives().items()),
        Directory(auth_dir, mode=0o755),
        Symlink(f"{auth_dir}/{AUTH_LINK}", "../conf/PureDB", notify=notify, requires=after),
        CertificateBundle(str(prof["certificate"]), key, cert, notify=notify,
                          requires=(f"certificate:{cert}",)),
        puredb(after),
        Service(service, requires=after),
    ]
    return Component(
        "ftp", resources,
        validators=[Validator(["pure-ftpd-wrapper", "--show-options"], "pure-ftpd-wrapper")],
        health=[tls_required(cert)],
    )


def build_components(config: Config, stack: StackContext) -> list[Component]:
    """The FTP server's component when FTP is in _XTRAS_LIST, else none."""
    return [component(stack)] if enabled(config, stack.release.codename) else []


__all__ = ["CertificateBundle", "PureDb", "build_components", "component", "directives",
           "ports", "puredb"]
