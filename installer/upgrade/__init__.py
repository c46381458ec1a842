"""Upgrades: release channels (manifest), the tool's own update (selfupdate), snapshots and
rollback (snapshot), and the package upgrades of a converge (packages)."""

from installer.errors import BarracudaError


class UpgradeError(BarracudaError):
    """An upgrade cannot go on: a manifest or wheel that fails its checksum, a source that
    is not configured, a tool environment that cannot be switched. Nothing was changed."""
