"""jsPsych trial data from an alloop study → LabelEvents.

The browser writes one row per trial (jsPsych's data); rows with `alloop_role == "item"` are
responses to batch items and become label events. Practice trials, attention checks,
consent, instructions and demographics never become labels; attention checks give each
participant a pass rate, recorded with every label they gave.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from alloop.tools.errors import InputError
from alloop.tools.run.labels import check_label
from alloop.tools.run.labels import label_problem as shared_label_problem
from alloop.tools.run.reader import json_loads
from alloop.tools.run.rundir import parse_jsonl
from alloop.tools.run.schema import LabelEvent, TaskSpec

SHARED_CHECKS = frozenset({"multi_select", "magnitude", "free_text", "cloze"})
"""Task types whose answers are checked as a file's are: options, a positive number on a log scale, no empty text."""


@dataclass
class Conversion:
    events: list[LabelEvent] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Why trials were left out (no response, a label outside the schema, ...)."""
    attention_pass_rate: float | None = None


def parse_result_data(text: str, where: str) -> list[dict[str, Any]]:
    """The trial rows in a result's data (a jsPsych data JSON array; JSON lines also read)."""
    text = text.strip()
    if not text:
        return []
    try:
        data = json_loads(text, where)  # its limits (huge numbers, deep nesting) are InputErrors
    except json.JSONDecodeError:
        data = []
        for row in parse_jsonl(text.splitlines(), where, objects_only=False):
            data.extend(row if isinstance(row, list) else [row])
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise InputError(f"{where}: result data is not a list of trials")
    return [row for row in data if isinstance(row, dict)]


def label_problem(label: Any, spec: TaskSpec, trial: dict[str, Any]) -> str | None:
    """Why this label does not fit the task (None: it fits)."""
    task = spec.task_type
    if label is None or label == "" or label == []:
        return "no response"
    if task in {"binary", "ordinal_scale", "categorical", "forced_choice"}:
        if not isinstance(label, str):
            return f"label {label!r} is not a string"
        fixed = task in {"binary", "ordinal_scale"} or not trial.get("has_choices")
        if fixed and spec.labels and label not in spec.labels:
            return f"label {label!r} is not one of {spec.labels}"
        return None
    if task in SHARED_CHECKS:
        return shared_label_problem(spec, label)  # the checks a file import makes (run/labels.py)
    return f"unknown task type {task!r}"


def trials_to_events(
    trials: Sequence[dict[str, Any]],
    spec: TaskSpec,
    *,
    round_: int,
    annotator: str,
    external_prefix: str,
    destination: str = "jatos",
    extra: dict[str, Any] | None = None,
) -> Conversion:
    """Label events for one participant's trials; external_id = prefix + trial index."""
    out = Conversion()
    checks = [t for t in trials if t.get("alloop_role") == "attention"]
    demographics = next((t.get("response") for t in trials if t.get("alloop_role") == "demographics"), None)
    if checks:
        out.attention_pass_rate = sum(bool(t.get("passed")) for t in checks) / len(checks)
    for position, trial in enumerate(trials):
        if trial.get("alloop_role") != "item":
            continue
        index = trial.get("trial_index", position)
        item_id = trial.get("item_id")
        label = trial.get("label")
        if isinstance(label, float) and spec.task_type == "magnitude" and label.is_integer():
            label = float(label)
        reason = label_problem(label, spec, trial) if item_id else "no item_id"
        if reason:
            out.skipped.append(f"{external_prefix}:{index} item {item_id!r}: {reason}")
            continue
        if spec.task_type in SHARED_CHECKS:
            label = check_label(spec, label, f"{external_prefix}:{index}")  # as a file import stores it
        out.events.append(
            LabelEvent(
                item_id=str(item_id),
                label=label,
                source="human",
                annotator=annotator,
                round=round_,
                destination=destination,
                external_id=f"{external_prefix}:{index}",
                extra={
                    "list": trial.get("list"),
                    "condition": trial.get("condition"),
                    "rt": trial.get("rt"),
                    "response": trial.get("response"),
                    "widget": trial.get("widget"),
                    **({"positions": trial["positions"]} if "positions" in trial else {}),
                    "attention_pass_rate": out.attention_pass_rate,
                    "demographics": demographics,
                    **(extra or {}),
                    "prolific_pid": trial.get("prolific_pid") or (extra or {}).get("prolific_pid"),
                },
            )
        )
    return out
