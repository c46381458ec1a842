"""Rendering the shipped Jinja2 templates (templates/), strictly: an undefined variable is
an error naming the template and line, never an empty string in a config file."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from installer.data import templates_dir
from installer.errors import DataError

if TYPE_CHECKING:
    import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2  # deferred: commands that render nothing (version, --help) never load it

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # config files, not HTML
    )


def render(name: str, context: Mapping[str, Any]) -> str:
    import jinja2

    try:
        return environment().get_template(name).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise DataError(f"templates/{exc.name or name}:{exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        raise DataError(f"templates/{name}: template not found") from exc
    except jinja2.UndefinedError as exc:
        raise DataError(f"templates/{name}: {exc.message}") from exc
