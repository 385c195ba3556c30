"""Tables that fit the terminal: columns are dropped, never a number split across lines.

Each column's width is measured from its cells; columns are taken in order of importance while
the table still fits, and numbers never wrap. `wide` keeps every column at its full width (the
lines are then as long as they need to be).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from numbers import Real
from typing import Any

from rich.console import Console
from rich.table import Table

TEXT_MIN = 16
"""Width a text column gets at least when space is short; text wraps, numbers never do."""
BORDERS = 3
"""Characters a column adds besides its cells: one padding space each side and a rule."""

ROUND_PRIORITY = (
    "round",
    "n_labeled",
    "{gold}",
    "{decision}",
    "stop_decision",
    "n_batch",
    "strategy",
    "judge_accuracy",
    "agreement_model_human",
    "agreement_human_ceiling",
    "gold_accuracy",
    "gold_macro_f1",
    "gold_mae",
    "training_strategy",
    "train_seconds",
    "score_seconds",
    "select_seconds",
    "model_version",
)
"""A round table's columns, most important first: the spec's gold metric and the figure decisions read."""

SHORT = {
    "n_labeled": "labeled",
    "n_batch": "batch",
    "stop_decision": "decision",
    "training_strategy": "training",
    "model_version": "model",
    "agreement_model_human": "model~human",
    "agreement_human_ceiling": "ceiling",
}


def cell(value: Any) -> str:
    """A value as a table shows it: floats with 3 decimals, nothing for None."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def short_header(name: str) -> str:
    """A column name abbreviated for a narrow table (`gold_macro_f1` → `gold F1`)."""
    if name in SHORT:
        return SHORT[name]
    return name.replace("macro_f1", "F1").replace("accuracy", "acc").replace("_seconds", " s").replace("_", " ")


def round_columns(metric: str, decision_source: str) -> list[str]:
    """ROUND_PRIORITY for a spec: its gold metric, then the figure its decisions read (when not the same)."""
    gold, decision = f"gold_{metric}", f"{decision_source or 'gold'}_{metric}"
    named = [c.format(gold=gold, decision=decision) for c in ROUND_PRIORITY]
    return list(dict.fromkeys(named))


def fit_table(
    title: str, rows: Sequence[dict[str, Any]], width: int, priority: Sequence[str] | None = None, wide: bool = False
) -> Table:
    """A table of `rows` no wider than `width` (unless `wide`): the first columns of `priority` that fit.

    Columns empty in every row (judge_* without a judge) are left out. Without `priority`, every
    column counts, in the rows' order, and only `wide` shows columns that are not in it.
    """
    present = [k for k in dict.fromkeys(k for row in rows for k in row) if any(cell(row.get(k)) for row in rows)]
    if wide:
        chosen = present
    else:
        order = [c for c in (priority or present) if c in present]
        chosen, used = [], 1
        for column in order:
            need = _need(column, rows, short_header(column))
            if used + need + BORDERS <= width:
                chosen.append(column)
                used += need + BORDERS
    table = Table(title=title)
    for column in chosen:
        numeric = _numeric(column, rows)
        header = column if wide else short_header(column)
        table.add_column(
            header,
            justify="right" if numeric else "left",
            no_wrap=numeric or wide,
            overflow="ellipsis" if numeric else "fold",
            min_width=_need(column, rows, header) if numeric or wide else None,
        )
    for row in rows:
        table.add_row(*(cell(row.get(c)) for c in chosen))
    return table


def print_table(console: Console, table: Table, wide: bool) -> None:
    """Print a table; a wide one on a console as wide as the table, so the terminal, not rich, folds it."""
    if not wide:
        console.print(table)
        return
    needed = console.measure(table, options=console.options.update_width(10**5)).maximum
    wider = Console(
        width=max(console.width, needed), force_terminal=console.is_terminal, color_system=console.color_system
    )
    wider.print(table)


def _numeric(column: str, rows: Sequence[dict[str, Any]]) -> bool:
    values = [row.get(column) for row in rows if row.get(column) not in (None, "")]
    return bool(values) and all(isinstance(v, Real) and not isinstance(v, bool) for v in values)


def _need(column: str, rows: Sequence[dict[str, Any]], header: str) -> int:
    """Width the column takes: its widest cell or header; a text column can wrap, down to TEXT_MIN."""
    widest = max([len(header), *(len(cell(row.get(column))) for row in rows)])
    return widest if _numeric(column, rows) else min(widest, max(TEXT_MIN, len(header)))
