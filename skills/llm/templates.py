"""Prompt templates: jinja2 files beside the code that uses them, never strings scattered through it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

PROMPTS = Path(__file__).parent / "prompts"


@cache
def _environment(directory: str) -> jinja2.Environment:
    # StrictUndefined: a template naming a variable the code did not pass fails loudly instead of rendering "".
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,  # prompts are plain text, not HTML
    )


def render(name: str, directory: str | Path = PROMPTS, **context: Any) -> str:
    """Render the template ``name`` (e.g. ``"solve.jinja"``) from ``directory`` (default: skills/llm/prompts).

    >>> "2+3=" in render("solve.jinja", question="2+3=")
    True
    """
    return _environment(str(directory)).get_template(name).render(**context).strip()
