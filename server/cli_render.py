"""A tool's result as people read it: a summary, `key: value` lines and tables that fit; JSON for scripts.

`--json` prints the output model exactly. Otherwise an output model's own `summary() -> str` wins;
else fields are listed, lists of rows become tables, and a run's round table (status, simulate)
is read from its results.tsv so it shows the spec's gold metric and the figure decisions read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from alloop.cli_tables import cell, fit_table, print_table, round_columns

if TYPE_CHECKING:
    from pydantic import BaseModel

ROUND_VIEWS = frozenset({"status", "simulate"})
"""Tools whose readable output is the run's round table (their commands take --wide)."""
HIDDEN_IN_ROUND_VIEWS = frozenset({"last_result", "rounds"})
"""Fields the round table shows better than a listing."""


def render(result: BaseModel, as_json: bool, console: Console | None = None) -> None:
    """Print a tool's result: JSON for scripts, a readable summary for people."""
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    summary = getattr(result, "summary", None)
    if callable(summary):
        typer.echo(summary())
        return
    list_fields(result.model_dump(mode="json"), console or _console())


def render_rounds(result: BaseModel, runs: Path, as_json: bool, wide: bool, console: Console | None = None) -> None:
    """status and simulate: their fields, then the run's round table fitted to the terminal."""
    if as_json:
        render(result, as_json=True)
        return
    console = console or _console()
    data = result.model_dump(mode="json")
    list_fields({k: v for k, v in data.items() if k not in HIDDEN_IN_ROUND_VIEWS and k != "next_step"}, console)
    print_rounds(runs, data["run"], console, wide)
    if data.get("next_step"):
        console.print(f"[bold]next step[/]: {escape(data['next_step'])}")


def print_rounds(runs: Path, name: str, console: Console, wide: bool, title: str | None = None) -> None:
    """The run's results.tsv as a table: round, labels, the spec's gold metric and decision figure first."""
    from alloop.tools.run.rundir import RunRoot

    run = RunRoot(runs).run(name)
    rows = [row.model_dump() for row in run.results()]
    if not rows:
        console.print("no rounds trained yet")
        return
    spec = run.spec()
    priority = round_columns(spec.metric, spec.model.decision_source)
    title = title or f"{name}: rounds (gold = held-out human gold)"
    print_table(console, fit_table(title, rows, console.width, priority, wide), wide)


def list_fields(data: dict[str, Any], console: Console) -> None:
    """`key: value` lines; nested objects indented, lists of rows as tables, empty fields left out."""
    for key, value in data.items():
        if value is None or value == [] or value == {}:
            continue
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            print_table(console, fit_table(key, value, console.width), wide=False)
        elif isinstance(value, dict) and any(isinstance(v, dict | list) for v in value.values()):
            console.print(f"[bold]{escape(key)}[/]:")
            for inner, inner_value in value.items():
                if inner_value not in (None, "", [], {}):
                    console.print(f"  {escape(str(inner))}: {escape(_inline(inner_value))}")
        else:
            console.print(f"[bold]{escape(key)}[/]: {escape(_inline(value))}")


def _inline(value: Any) -> str:
    """A value on one line: `a 3, b 5` for a flat mapping, `0–9` for a run of integers."""
    if isinstance(value, dict):
        if all(not isinstance(v, dict | list) for v in value.values()):
            return ", ".join(f"{k} {cell(v)}" for k, v in value.items())
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return ", ".join(_spans(value))
        return ", ".join(_inline(v) if isinstance(v, dict | list) else cell(v) for v in value)
    return cell(value)


def _spans(numbers: Iterable[int]) -> list[str]:
    """Consecutive integers as ranges: [0, 1, 2, 5] → ['0–2', '5']."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return [str(a) if a == b else f"{a}–{b}" for a, b in spans]


def _console() -> Console:
    from alloop.cli_console import out

    return out
