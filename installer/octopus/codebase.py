"""What an instance's platform trees are, through installer.drupal.detect: read once per run
by the loader (or, for a platform added in this run, from its source) and moved to the path
the platform has in the instance, so settings.php, the vhost and the Drupal tool name the
real paths whatever tree was read (a --root tree, the source directory)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from installer.drupal.detect import DRUPAL, DRUPAL7, Platform, PlatformError, detect
from installer.octopus.model import Instance
from installer.target import Target

KINDS = {DRUPAL: "drupal", DRUPAL7: "drupal7"}


def kind_of(platform: Platform) -> str:
    """The vhost type of a codebase: drupal (8 and later), drupal7 or plain."""
    return KINDS.get(platform.core, "plain")


def rebase(platform: Platform, root: str) -> Platform:
    """`platform` as if it had been read at `root`."""
    new = Path(root)

    def moved(path: Path | None) -> Path | None:
        return None if path is None else new / path.relative_to(platform.root)

    docroot = moved(platform.docroot)
    assert docroot is not None
    return replace(platform, root=new, docroot=docroot, drush=moved(platform.drush),
                   redis_module=moved(platform.redis_module))


def read(target: Target, instance: Instance, name: str) -> Platform | None:
    """The platform `name` as placed in the instance, or None when its tree is not there
    yet (a clone that has not run) or holds no PHP at all."""
    real = target.path(instance.platform_dir(name))
    if not real.is_dir():
        return None
    try:
        return rebase(detect(real), instance.platform_dir(name))
    except PlatformError:
        return None
