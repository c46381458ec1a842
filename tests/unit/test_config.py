"""The config corpus: every good file loads, every bad one fails with a one-line
`file:line: key: ...` message naming what is allowed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from installer.config import default_text, load, missing_keys, resolve_path, with_missing_keys
from installer.config.cnf import parse_text, read
from installer.config.schema import BadValue, convert, schema, validate
from installer.config.text import shown
from installer.config.xtras import select
from installer.data import load_profile
from installer.errors import ConfigError

CORPUS = Path(__file__).parent / "config_corpus"
GOOD = sorted((CORPUS / "good").glob("*.cnf"))
BAD = sorted((CORPUS / "bad").glob("*.cnf"))


def expectation(path: Path) -> tuple[int, str, str]:
    """`# expect: LINE KEY | fragment` on the first line of a bad file."""
    head = path.read_text().splitlines()[0].removeprefix("# expect:").strip()
    where, fragment = (part.strip() for part in head.split("|", 1))
    line, key = where.split()
    return int(line), key, fragment


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_good_files_load(path: Path) -> None:
    config = validate(read(path))
    assert config.exists
    assert set(config.settings) == set(schema())


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_files_fail_with_one_line(path: Path) -> None:
    line, key, fragment = expectation(path)
    with pytest.raises(ConfigError) as caught:
        validate(read(path))
    message = str(caught.value)
    prefix = f"{path}:{line}: " + ("" if key == "-" else f"{key}: ")
    assert message.startswith(prefix), message
    assert fragment in message
    assert "\n" not in message


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.cnf"
    path.write_bytes(b'_MY_EMAIL="caf\xe9@example.com"\n')
    with pytest.raises(ConfigError, match=r"latin1.cnf: not UTF-8 text \(byte 14\)"):
        read(path)


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    config = load(tmp_path / "none.cnf")
    assert not config.exists
    assert all(s.source == "default" for s in config.settings.values())


def test_sources_name_file_and_line() -> None:
    config = validate(read(CORPUS / "good" / "quoting.cnf"))
    assert config.settings["_SSH_PORT"].source.endswith("quoting.cnf:5")
    assert config["_SSH_PORT"] == 2222
    assert config["_NGINX_WORKERS"] == 4
    assert config["_XTRAS_LIST"] == "IMG GIT"
    assert config["_STRONG_PASSWORDS"] == 32
    assert config.settings["_MY_EMAIL"].source.endswith(":2")
    assert config.settings["_DB_BACKUPS_TTL"].source == "default"


def test_boa_operator_file_warns_about_unused_keys() -> None:
    config = validate(read(CORPUS / "good" / "boa-operator.cnf"))
    assert "_AUTOPILOT" in config.ignored and "_DB_SERIES" in config.ignored
    assert "_MY_EMAIL" not in config.ignored
    selection = select(config["_XTRAS_LIST"], "bookworm")
    assert selection.codes == ("ADM", "FTP", "IMG", "CSF")  # CSF: the nftables firewall
    assert selection.warnings == ()


def test_default_file_is_complete_and_valid() -> None:
    text = default_text()
    config = validate(parse_text(text, "default"))
    assert missing_keys(text, "default") == []
    for key, spec in schema().items():
        assert config.settings[key].raw == str(spec["default"])


def test_new_keys_are_appended_never_overwriting() -> None:
    operator = '# mine\n_SSH_PORT="2222"\n_MY_EMAIL=ops@example.org # keep this comment\n'
    updated = with_missing_keys(operator, "f")
    assert updated.startswith(operator)
    assert missing_keys(updated, "f") == []
    config = validate(parse_text(updated, "f"))
    assert config["_SSH_PORT"] == 2222
    assert with_missing_keys(updated, "f") == updated


def test_xtras_all_expands_to_supported_default_set() -> None:
    registry = load_profile("xtras")["codes"]
    expected = tuple(c for c, s in registry.items()
                     if s.get("in_all") and s["status"] == "supported")
    assert select("ALL", "bookworm").codes == expected
    assert select("ALL", "bookworm").warnings == ()


def test_xtras_tokens_are_whole_words() -> None:
    selection = select("IMG,GIT  SR4", "trixie")
    assert selection.codes == ("IMG", "GIT")
    assert "SR4" in selection.warnings[0] and "SR7" in selection.warnings[0]
    assert "git" in selection.packages("trixie")


@pytest.mark.parametrize("key", [
    "_MY_EMAIL", "_XTRAS_LIST", "_PHP_MULTI_INSTALL", "_PHP_SINGLE_INSTALL", "_PHP_FPM_VERSION",
    "_PHP_CLI_VERSION", "_NGINX_WORKERS", "_SSH_PORT", "_RESERVED_RAM", "_STRONG_PASSWORDS",
    "_CPU_SPIDER_RATIO", "_CPU_MAX_RATIO", "_CPU_CRIT_RATIO", "_DB_BACKUPS_TTL",
    "_INCIDENT_EMAIL_REPORT", "_AUTO_UP_WEEKLY", "_AUTO_UP_MONTH", "_AUTO_UP_DAY", "_AUTO_VER",
])
def test_schema_has_the_keys_operators_rely_on(key: str) -> None:
    assert key in schema()


# ------------------------------------------------------------- the careless operator


def test_only_the_default_config_may_be_missing(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BARRACUDA_CONFIG", raising=False)
    default = tmp_path / "root/.barracuda.cnf"
    assert resolve_path(None, tmp_path) == default
    assert resolve_path(str(default), tmp_path) == default  # named, but the default one
    assert not load(default).exists
    with pytest.raises(ConfigError, match=r"typo.cnf: no such file \(given by --config\)"):
        resolve_path(str(tmp_path / "typo.cnf"), tmp_path)
    monkeypatch.setenv("BARRACUDA_CONFIG", str(tmp_path / "typo.cnf"))
    with pytest.raises(ConfigError, match=r"given by \$BARRACUDA_CONFIG"):
        resolve_path(None, tmp_path)


def test_only_a_regular_file_owned_and_writable_by_root_is_read(tmp_path: Path) -> None:
    good = tmp_path / "good.cnf"
    good.write_text('_SSH_PORT="2222"\n')
    for mode in (0o600, 0o644, 0o400):
        good.chmod(mode)
        assert validate(read(good))["_SSH_PORT"] == 2222
    link = tmp_path / "link.cnf"
    link.symlink_to(good)
    fifo = tmp_path / "fifo.cnf"
    os.mkfifo(fifo)
    for path, why in ((link, "a symbolic link"), (fifo, "a FIFO"), (tmp_path, "a directory"),
                      (Path("/dev/null"), "a character device")):
        with pytest.raises(ConfigError, match=why):
            read(path)
    for mode, who in ((0o620, "its group"), (0o602, "others"), (0o666, "its group and others")):
        good.chmod(mode)
        with pytest.raises(ConfigError, match=f"writable by {who} "):
            read(good)
    assert link.is_symlink() and stat.S_ISFIFO(fifo.lstat().st_mode)


def test_values_are_shown_escaped_and_cut() -> None:
    assert shown("o1") == '"o1"'
    assert shown("o1\nx\x00\x1b") == '"o1\\nx\\x00\\x1b"'
    assert shown("a" * 100, 10) == '"aaaaaaaaaa..." (100 characters)'


def test_huge_numbers_are_refused_without_a_traceback() -> None:
    for key in ("_SSH_PORT", "_NGINX_WORKERS", "_STRONG_PASSWORDS", "_CPU_MAX_RATIO"):
        with pytest.raises(BadValue):
            convert(key, "9" * 5000)
    assert convert("_SSH_PORT", "0022") == 22
    assert convert("_STRONG_PASSWORDS", "000040") == 40


@pytest.mark.parametrize("address", ["ops@example.org", "first.last+tag@mail.example.co.uk",
                                     "root@localhost", "a_b%c@x-y.example"])
def test_good_addresses(address: str) -> None:
    assert convert("_MY_EMAIL", address) == address


@pytest.mark.parametrize("address", ["-f@example.org", ".a@example.org", "a|b@example.org",
                                     "a b@example.org", "a\x00@example.org", "a@-x.org",
                                     "a@x..org", "a" * 65 + "@example.org",
                                     "a@" + "b" * 60 + ("." + "c" * 60) * 4, "a@b@c.org"])
def test_bad_addresses(address: str) -> None:
    with pytest.raises(BadValue):
        convert("_MY_EMAIL", address)


def test_single_quotes_are_literal_but_shell_syntax_is_refused_in_used_keys() -> None:
    text = "_AWS_PWD='pa$$`w`'\n_MY_EMAIL='ops@example.org'\n"
    assert validate(parse_text(text, "f")).ignored == ("_AWS_PWD",)
    with pytest.raises(ConfigError, match=r"f:1: _MY_EMAIL: value \"\$\(id\)\" uses shell"):
        validate(parse_text("_MY_EMAIL='$(id)'\n", "f"))


def test_control_characters_and_huge_keys_give_one_short_line() -> None:
    for text, fragment in (('_MY_EMAIL="a\x00b@x.org"\n', "_MY_EMAIL: control character \\x00"),
                           ("_" + "A" * 100_000 + "=1\n", "(100001 characters) is too long"),
                           ("a" * 100_000 + "\n", "cannot read")):
        with pytest.raises(ConfigError) as caught:
            parse_text(text, "f")
        message = str(caught.value)
        assert fragment in message and "\n" not in message and len(message) < 300, message
