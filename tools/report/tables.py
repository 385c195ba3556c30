"""A section of the report page, and its tables with the columns that say nothing left out."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from alloop.tools.report.figures import figure


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    """One part of the page: an id the page links to, figures (data URIs), tables and notes."""

    id: str
    title: str
    notes: list[str] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)

    def add_figure(self, alt: str, png: bytes) -> None:
        self.figures.append((alt, "data:image/png;base64," + base64.b64encode(png).decode("ascii")))


def table(records: list[dict[str, Any]], caption: str = "", digits: int = 3) -> Table:
    """Rows of dicts as a table; a column empty in every row is left out (it would only say 'none')."""
    columns: list[str] = []
    for record in records:
        columns += [c for c in record if c not in columns]
    kept = [c for c in columns if any(record.get(c) not in (None, "") for record in records)]
    rows = [[figure(record.get(c), digits, "–") for c in kept] for record in records]
    return Table(kept, rows, caption)
