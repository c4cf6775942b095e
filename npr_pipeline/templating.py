"""The one jinja2 set-up behind every HTML page we write (XPR reports, quality results)."""

from __future__ import annotations

from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"


def html_environment() -> jinja2.Environment:
    """A strict, autoescaping environment over ``npr_pipeline/templates``.

    Autoescape is on because every value may be hostile (a unit's free text, GX's exception
    messages); undefined names fail instead of rendering empty.
    """
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
