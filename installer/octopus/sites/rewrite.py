"""The paths a site's database holds that name its own directory, rewritten when the site
gets another name (a clone, a rename): `sites/OLD/` becomes `sites/NEW/` (and an absolute
`//OLD/sites/OLD/` becomes `//NEW/sites/NEW/`) in

* the text of its fields (body and summary columns: Drupal 7's `field_data_*` and
  `field_revision_*`, Drupal 8+'s `ENTITY__FIELD` tables), where an editor pasted an
  `<img src="/sites/OLD/files/...">`;
* Drupal 7's `block_custom.body`, `system.filename` (modules kept in sites/OLD/modules) and
  the `variable` table, whose values are PHP-serialized: every string in them is rewritten
  with its length counted again (file_public_path, file_private_path, a theme's logo_path).

The files themselves are `public://` URIs and settings.php names the site's directories, so
nothing else needs it. Drupal 8+'s `config` table is left alone (its file paths come from
settings.php)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from installer.database import sql
from installer.drupal.detect import DRUPAL7
from installer.runner import Runner

TEXT_TYPES = ("text", "mediumtext", "longtext", "varchar")
# Drupal 7's own columns that may hold a path under sites/DOMAIN.
D7_COLUMNS = (("block_custom", "body"), ("system", "filename"))
_STRING = re.compile(rb'([sSOC]):(\d+):"')


@dataclass(frozen=True)
class Rename:
    """A site's directory name before and after."""

    old: str
    new: str

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """What is replaced, the longest first."""
        return ((f"//{self.old}/sites/{self.old}/", f"//{self.new}/sites/{self.new}/"),
                (f"sites/{self.old}/", f"sites/{self.new}/"))

    @property
    def marker(self) -> str:
        """What a value holding a path to rewrite contains."""
        return f"sites/{self.old}/"

    def text(self, value: bytes) -> bytes:
        for old, new in self.pairs:
            value = value.replace(old.encode(), new.encode())
        return value


def reserialized(value: bytes, rename: Rename) -> bytes:
    """A PHP-serialized `value` with the paths of every string in it rewritten and each
    string's length counted again; `value` as it is when it is not serialized data."""
    out = bytearray()
    i = 0
    while i < len(value):
        match = _STRING.match(value, i)
        if match is None:
            out.append(value[i])
            i += 1
            continue
        start = match.end()
        end = start + int(match.group(2))
        if value[end:end + 1] != b'"':
            return value  # not what serialize() writes: left alone
        text = value[start:end]
        if match.group(1) in (b"s", b"S"):
            text = rename.text(text)
        out += match.group(1) + b":%d:\"" % len(text) + text + b'"'
        i = end + 1
    return bytes(out)


def text_columns(runner: Runner, database: str, core: str) -> list[tuple[str, str]]:
    """(table, column) of every field text column of `database` (see the module), with
    Drupal 7's own columns when they exist."""
    if core == DRUPAL7:
        tables = "(TABLE_NAME LIKE 'field\\_data\\_%' OR TABLE_NAME LIKE 'field\\_revision\\_%')"
    else:
        tables = "TABLE_NAME LIKE '%\\_\\_%'"
    types = ", ".join(sql.quote_text(t) for t in TEXT_TYPES)
    rows = sql.query(runner, (
        "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE "
        f"TABLE_SCHEMA = {sql.quote_text(database)} AND {tables} AND "
        "(COLUMN_NAME LIKE '%\\_value' OR COLUMN_NAME LIKE '%\\_summary') "
        f"AND DATA_TYPE IN ({types}) ORDER BY TABLE_NAME, COLUMN_NAME"))
    found = [(row[0], row[1]) for row in rows]
    if core == DRUPAL7:
        known = {(r[0], r[1]) for r in sql.query(runner, (
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE "
            f"TABLE_SCHEMA = {sql.quote_text(database)}"))}
        found += [pair for pair in D7_COLUMNS if pair in known]
    return found


def _like(rename: Rename) -> str:
    return sql.quote_text("%" + sql.like_escaped(rename.marker) + "%")


def column_statements(database: str, columns: list[tuple[str, str]],
                      rename: Rename) -> list[str]:
    """One UPDATE per column: the paths replaced where the column holds one."""
    statements = []
    for table, column in columns:
        name = sql.quote_name(column)
        value = name
        for old, new in rename.pairs:
            value = f"REPLACE({value}, {sql.quote_text(old)}, {sql.quote_text(new)})"
        statements.append(f"UPDATE {sql.quote_name(database)}.{sql.quote_name(table)} "
                          f"SET {name} = {value} WHERE {name} LIKE {_like(rename)}")
    return statements


def count_statement(database: str, columns: list[tuple[str, str]], rename: Rename) -> str:
    """How many rows of each column hold a path to rewrite (one query)."""
    return " UNION ALL ".join(
        f"SELECT {sql.quote_text(f'{table}.{column}')}, COUNT(*) FROM "
        f"{sql.quote_name(database)}.{sql.quote_name(table)} WHERE "
        f"{sql.quote_name(column)} LIKE {_like(rename)}" for table, column in columns)


def variable_statements(runner: Runner, database: str, rename: Rename) -> list[str]:
    """Drupal 7: the UPDATEs of the `variable` rows whose serialized value changes."""
    rows = sql.query(runner, f"SELECT name, HEX(value) FROM {sql.quote_name(database)}."
                             f"variable WHERE value LIKE {_like(rename)}")
    statements = []
    for name, hexed in rows:
        old = bytes.fromhex(hexed)
        new = reserialized(old, rename)
        if new != old:
            statements.append(f"UPDATE {sql.quote_name(database)}.variable SET value = "
                              f"X'{new.hex()}' WHERE name = {sql.quote_text(name)}")
    return statements


def profile_statements(database: str, old: str, new: str) -> list[str]:
    """Drupal 7: the site's install profile renamed `old` -> `new` (a profile whose
    `old_short_name` is the site's): the install_profile variable and the profile's row in
    `system`."""
    value = f's:{len(new.encode())}:"{new}";'.encode()
    db = sql.quote_name(database)
    return [f"UPDATE {db}.variable SET value = X'{value.hex()}' WHERE name = 'install_profile'",
            f"UPDATE {db}.system SET name = {sql.quote_text(new)}, filename = "
            f"{sql.quote_text(f'profiles/{new}/{new}.profile')} WHERE name = "
            f"{sql.quote_text(old)} AND filename = "
            f"{sql.quote_text(f'profiles/{old}/{old}.profile')}"]


def rewrite_paths(runner: Runner, database: str, core: str, rename: Rename) -> list[str]:
    """Rewrite the site's paths in `database`; what was rewritten ("table.column (N)")."""
    columns = text_columns(runner, database, core)
    counts = {row[0]: int(row[1]) for row in sql.query(
        runner, count_statement(database, columns, rename))} if columns else {}
    touched = [pair for pair in columns if counts.get(f"{pair[0]}.{pair[1]}")]
    statements = column_statements(database, touched, rename)
    variables: list[str] = []
    if core == DRUPAL7 and ("system", "filename") in columns:
        variables = variable_statements(runner, database, rename)
    if statements or variables:
        sql.execute(runner, [*statements, *variables])
    done = [f"{table}.{column} ({counts[f'{table}.{column}']})" for table, column in touched]
    if variables:
        done.append(f"variable ({len(variables)})")
    return done
