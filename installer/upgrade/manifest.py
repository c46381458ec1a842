"""Release channels as data: profiles/channels/<name>.yml, or the live copy at
_BARRACUDA_CHANNEL_URL checked against its "<url>.sha256"; offline, the bundled copy with a
warning that says so.

    manifest = load_channel("stable", config, app)   # octopus up-stable calls this too
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from installer.config import Config
from installer.data import load_profile, profiles_dir
from installer.errors import DataError
from installer.upgrade import UpgradeError

if TYPE_CHECKING:
    import requests

CHANNELS = ("stable", "head")
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Console(Protocol):
    def say(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...


def version_key(version: str) -> tuple[int, ...]:
    """"0.10.1" -> (0, 10, 1): release versions are plain dotted numbers."""
    if not _VERSION.match(version):
        raise DataError(f"bad version {version!r}: expected dotted numbers such as 0.2.0")
    return tuple(int(part) for part in version.split("."))


def newer(candidate: str, current: str) -> bool:
    return version_key(candidate) > version_key(current)


@dataclass(frozen=True)
class Manifest:
    channel: str
    tool: str  # the barracuda version the channel expects
    config_revision: int
    components: tuple[str, ...]
    releases: dict[str, dict[str, Any]]
    source: str  # the URL it was read from, or the bundled file
    bundled: bool
    tool_sha256: str = ""
    sha256: str = field(default="", compare=False)

    def release(self, codename: str) -> dict[str, Any]:
        if codename not in self.releases:
            raise UpgradeError(f"the {self.channel} channel ({self.source}) does not support "
                               f"{codename}; it lists {', '.join(sorted(self.releases))}")
        return self.releases[codename]

    def php_versions(self, codename: str) -> list[str]:
        return [str(v) for v in self.release(codename)["php"]]

    def pins(self, codename: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.release(codename).get("pins") or {}).items()}

    def record(self) -> dict[str, str]:
        """The fields versions.log gets from the manifest."""
        return {"manifest": "bundled" if self.bundled else "fetched",
                "config_revision": str(self.config_revision)}


def parse(text: str, source: str, channel: str, *, bundled: bool) -> Manifest:
    """A manifest from its YAML text; anything malformed is a DataError naming the source."""
    def bad(what: str) -> DataError:
        return DataError(f"{source}: {what}")

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise bad(f"not valid YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise bad("expected a mapping at the top level")
    for key in ("channel", "tool", "config_revision", "components", "releases"):
        if key not in data:
            raise bad(f"missing {key}")
    if data["channel"] != channel:
        raise bad(f"is the {data['channel']!r} channel, expected {channel!r}")
    tool = str(data["tool"])
    if not _VERSION.match(tool):
        raise bad(f"tool: bad version {tool!r}")
    tool_sha = str(data.get("tool_sha256") or "")
    if tool_sha and not _SHA256.match(tool_sha):
        raise bad("tool_sha256: expected 64 lowercase hex digits")
    revision = data["config_revision"]
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        raise bad("config_revision: expected a whole number from 1")
    known = load_profile("distros")["releases"]
    components = data["components"]
    if not isinstance(components, list) or not components:
        raise bad("components: expected a list")
    releases = data["releases"]
    if not isinstance(releases, dict) or not releases:
        raise bad("releases: expected a mapping of distribution releases")
    for codename, entry in releases.items():
        if codename not in known:
            raise bad(f"releases: unknown distribution release {codename!r}")
        if not isinstance(entry, dict) or not isinstance(entry.get("php"), list):
            raise bad(f"releases.{codename}.php: expected a list of PHP versions")
        packaged = [str(v) for v in known[codename]["php"]["versions"]]
        for version in entry["php"]:
            if str(version) not in packaged:
                raise bad(f"releases.{codename}.php: {version} is not packaged for "
                          f"{codename} (profiles/distros.yml has {' '.join(packaged)})")
        pins = entry.get("pins") or {}
        if not isinstance(pins, dict):
            raise bad(f"releases.{codename}.pins: expected package: version")
        for component in components:
            if component != "php" and component not in known[codename]["packages"]:
                raise bad(f"components: {component!r} has no packages in profiles/distros.yml")
    return Manifest(
        channel=channel, tool=tool, config_revision=revision,
        components=tuple(str(c) for c in components), releases=dict(releases),
        source=source, bundled=bundled, tool_sha256=tool_sha,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


def bundled(channel: str) -> Manifest:
    path = profiles_dir() / "channels" / f"{channel}.yml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataError(f"{path}: missing channel manifest") from exc
    return parse(text, str(path), channel, bundled=True)


def timeouts() -> tuple[float, float]:
    fetch = load_profile("upgrade")["fetch"]
    return float(fetch["connect_timeout"]), float(fetch["read_timeout"])


def fetch_text(url: str) -> str:
    """GET a small text file; network trouble raises requests.RequestException."""
    import requests  # deferred: only an upgrade with a channel URL reaches the network

    response = requests.get(url, timeout=timeouts())
    response.raise_for_status()
    limit = int(load_profile("upgrade")["fetch"]["max_bytes"])
    if len(response.content) > limit:
        raise UpgradeError(f"{url}: larger than {limit} bytes")
    return response.content.decode("utf-8")


def load_channel(name: str, config: Config, app: Console) -> Manifest:
    """The manifest of channel `name` ("stable" or "head"): fetched from
    _BARRACUDA_CHANNEL_URL and verified against <url>.sha256; the bundled copy when that key
    is empty (said with app.say) or the network fails (said with app.warn). A checksum that
    does not match, or a malformed manifest, is an error: never a silent fallback."""
    if name not in CHANNELS:
        raise UpgradeError(f"unknown channel {name!r}; channels: {', '.join(CHANNELS)}")
    template = str(config["_BARRACUDA_CHANNEL_URL"])
    if not template:
        manifest = bundled(name)
        app.say(f"Channel {name}: the manifest bundled with this release ({manifest.source}); "
                "set _BARRACUDA_CHANNEL_URL to follow the live channel")
        return manifest
    url = template.replace("{channel}", name)
    import requests

    try:
        text = fetch_text(url)
        checksum = fetch_text(url + ".sha256")
    except requests.RequestException as exc:
        manifest = bundled(name)
        app.warn(f"cannot read the {name} manifest from {url} ({why(exc)}): offline? "
                 f"using the manifest bundled with this release instead ({manifest.source}, "
                 f"barracuda {manifest.tool})")
        return manifest
    expected = checksum.split()[0].lower() if checksum.split() else ""
    actual = hashlib.sha256(text.encode()).hexdigest()
    if expected != actual:
        raise UpgradeError(f"{url}: checksum mismatch: {url}.sha256 says {expected or 'nothing'},"
                           f" the file's sha256 is {actual}; refusing it")
    manifest = parse(text, url, name, bundled=False)
    app.say(f"Channel {name}: {url} (sha256 verified), barracuda {manifest.tool}, "
            f"configuration revision {manifest.config_revision}")
    return manifest


def why(exc: requests.RequestException) -> str:
    """A network failure in a few words."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        for words in ("Connection refused", "Name or service not known",
                      "Temporary failure in name resolution", "Network is unreachable",
                      "No route to host"):
            if words in text:
                return words.lower()
        return "no connection"
    return type(exc).__name__
