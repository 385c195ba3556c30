"""What a sync logs, read from the run's files: which rounds are settled, and each round's content.

A W&B step can be written once: a round is logged when nothing more will be added to it, that is
when a later round has begun (a results row or a selection file) or the round's own row ends the
loop (check_convergence said stop, or it is the final model). The newest round of a loop still
running waits, so its metrics, selected batch and stop decision go in together. A row changed after
its round was logged (check_convergence or a judge run on an old round) is not logged again: a W&B
step is written once, and results.tsv stays the record.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from alloop.tools.errors import InputError
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import ResultRow, TaskSpec

NAMESPACES = ("gold", "judge", "cv", "agreement")
"""Figures kept apart by kind: human gold, judge-assisted, out-of-fold, agreement."""
FIGURE_TYPES = {"data:image/png;base64,": "png", "data:image/svg+xml;base64,": "svg"}


@dataclass
class Plan:
    """The rounds (W&B steps) of a run: to log now, logged before, and not settled yet."""

    ready: list[int] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)


@dataclass
class Batch:
    """One round's selected items as a table: rank, item id, text, reason and every score."""

    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Figure:
    """A report figure: its W&B key, caption, and image bytes (PNG, or SVG markup)."""

    key: str
    caption: str
    kind: str
    data: bytes


@dataclass
class Content:
    """What one W&B step holds: the round's metrics, its selected batch, and (newest step) the figures."""

    step: int
    metrics: dict[str, Any]
    batch: Batch | None
    figures: list[Figure] = field(default_factory=list)


def plan(run: RunDir, logged: Collection[int]) -> Plan:
    """Sort the run's rounds into ready, done and pending (see the module docstring)."""
    rows = {row.round: row for row in run.results()}
    steps = sorted(set(rows) | set(run.selection_rounds()))
    if not steps:
        return Plan()
    last = steps[-1]
    closed = last in rows and (rows[last].final or rows[last].stop_decision == "stop")
    settled = [s for s in steps if s < last or closed]
    return Plan(
        ready=[s for s in settled if s not in logged],
        done=[s for s in settled if s in logged],
        pending=[s for s in steps if s not in settled],
    )


def contents(run: RunDir, spec: TaskSpec, steps: list[int], baseline: RunDir | None = None) -> list[Content]:
    """Each step's content, read before W&B is opened, so a bad file stops the sync before it logs anything."""
    rows = {row.round: row for row in run.results()}
    selected = set(run.selection_rounds())
    found = [
        Content(s, round_metrics(rows[s]) if s in rows else {}, batch(run, spec, s) if s in selected else None)
        for s in steps
    ]
    if found:
        found[-1].figures = report_figures(run, baseline)
    return found


def round_metrics(row: ResultRow) -> dict[str, Any]:
    """A results.tsv row as W&B keys: gold/…, judge/…, cv/…, agreement/… apart, loop/… for the rest.

    Empty cells are left out (no figure is invented); per-class F1 becomes one key per class.
    """
    metrics: dict[str, Any] = {}
    for name, value in row.model_dump().items():
        if name in ("round", "time") or value is None or value == "":
            continue
        if name == "gold_f1_by_class":
            metrics.update({f"gold/f1_by_class/{label}": f1 for label, f1 in _by_class(row, value).items()})
            continue
        prefix, _, rest = name.partition("_")
        metrics[f"{prefix}/{rest}" if prefix in NAMESPACES and rest else f"loop/{name}"] = value
    return metrics


def _by_class(row: ResultRow, value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise InputError(
            f"results.tsv round {row.round}: gold_f1_by_class must be a JSON object of label → F1, got {value!r}; "
            "fix the cell or train the round again"
        )
    return parsed


def batch(run: RunDir, spec: TaskSpec, round_: int) -> Batch:
    """selection_round_XX.jsonl with each item's text from the pool (the fields the encoder reads)."""
    chosen = run.selection(round_)
    pool = run.pool()
    texts = pool.take(pool.positions([row.item_id for row in chosen])).texts(spec.text_fields) if chosen else []
    measures = list(dict.fromkeys(measure for row in chosen for measure in row.scores))
    columns = ["rank", "item_id", "text", "reason", "strategy", "prediction", "confidence", *measures]
    rows = [
        [row.rank, row.item_id, text, row.reason, row.strategy, row.prediction, row.confidence]
        + [row.scores.get(measure) for measure in measures]
        for row, text in zip(chosen, texts, strict=True)
    ]
    return Batch(columns, rows)


def report_figures(run: RunDir, baseline: RunDir | None = None) -> list[Figure]:
    """The report page's figures, drawn by the report package exactly as report.html shows them."""
    from alloop.tools.report.sections import all_sections

    figures: list[Figure] = []
    for section in all_sections(run, baseline):
        for k, (alt, uri) in enumerate(section.figures, start=1):
            key = f"report/{section.id}" + (f"_{k}" if len(section.figures) > 1 else "")
            figures.append(_figure(key, alt, uri))
    return figures


def _figure(key: str, caption: str, uri: str) -> Figure:
    for prefix, kind in FIGURE_TYPES.items():
        if uri.startswith(prefix):
            try:
                return Figure(key, caption, kind, base64.b64decode(uri[len(prefix) :], validate=True))
            except binascii.Error as exc:
                raise InputError(f"report figure {key} is not valid base64: {exc}") from exc
    raise InputError(f"report figure {key} is a {uri[:30]!r}… data URI; W&B sync logs PNG and SVG figures only")
