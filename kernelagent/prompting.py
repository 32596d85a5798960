"""Renders the Jinja2 templates in prompts/; every word we send to the LLM lives there, not in Python."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

_PACKAGE = Path(__file__).resolve().parent


def _prompts_dir() -> Path:
    """Installed (`pip install .`): the templates ship as kernelagent/prompts/ (setup.py maps the top-level prompts/
    there). From the source tree (and an editable install): the repository's prompts/."""
    installed = _PACKAGE / "prompts"
    return installed if installed.is_dir() else _PACKAGE.parent / "prompts"


PROMPTS_DIR = _prompts_dir()


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(PROMPTS_DIR),
        undefined=jinja2.StrictUndefined,  # a missing variable is a bug, not an empty string in a prompt
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **variables: object) -> str:
    return _environment().get_template(template).render(**variables)
