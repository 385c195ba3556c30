"""alloop.prompts: prompt and rubric templates (Markdown and Jinja2), read as package data."""

from __future__ import annotations

from importlib import resources


def read_template(name: str) -> str:
    """The text of a template shipped in this package."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
