"""barracuda: installs, tunes, upgrades and keeps alive a Drupal hosting stack."""

__version__ = "0.2.0"
