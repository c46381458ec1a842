"""Generated secrets (MariaDB root, Redis): made once, kept by later runs, 0600 root files
under /var/lib/barracuda/secrets, and registered with the log redactor."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from installer.facts import Facts
from installer.resources.files import Directory, File
from installer.runlog import Redactor

SECRETS_DIR = "/var/lib/barracuda/secrets"
_ALPHABET = string.ascii_letters + string.digits  # no quoting problems in any config syntax


def generate(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass
class Secrets:
    facts: Facts
    redactor: Redactor
    length: int

    def get(self, name: str) -> str:
        """The kept value of secret `name`, or a new one (written by `resources`)."""
        real = self.facts.target.path(f"{SECRETS_DIR}/{name}")
        value = ""
        if real.is_file():
            value = real.read_text(encoding="utf-8").strip()
        if not value or not value.isalnum():
            value = generate(self.length)
        self.redactor.add(value)
        return value

    def resources(self, name: str, value: str) -> list[Directory | File]:
        return [
            Directory(SECRETS_DIR, mode=0o700),
            File(f"{SECRETS_DIR}/{name}", content=value + "\n", mode=0o600, comment="",
                 secret=True, requires=(f"dir:{SECRETS_DIR}",)),
        ]
