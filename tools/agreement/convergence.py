"""A run's model against its annotators: model–human agreement beside the human ceiling.

On the held-out items that two or more people labeled, the model is one more rater. Its
agreement with the people is measured on the pairs (model, person) and set beside the
agreement among the people themselves (the human–human ceiling); both come with bootstrap
intervals over items, drawn from the same resamples, so their gap has an interval too.

Human labels are the standing label events of sources in `HUMAN_SOURCES` on held-out items.
Judge labels never count as human: where a judge labeled held-out items, its agreement with the
people and the model's agreement with people and judges together are reported apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from alloop.tools.agreement.bootstrap import bootstrap as bootstrap_draws
from alloop.tools.agreement.bootstrap import percentile_interval
from alloop.tools.agreement.ratings import Ratings, number_text
from alloop.tools.agreement.statistics import Statistic, finite, krippendorff_alpha, statistic
from alloop.tools.base import ProgressFn, no_progress
from alloop.tools.errors import InputError, StateError
from alloop.tools.run.labels import HUMAN_SOURCES, current_labels
from alloop.tools.run.models import ModelDir, Predictions
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import TaskSpec
from alloop.tools.stopping.rules import Interval

JUDGE_PREFIX = "judge:"
"""Judges enter the reliability data under this prefix, apart from people of the same name."""
LEVEL_OF_TASK = {
    "binary": "nominal",
    "categorical": "nominal",
    "forced_choice": "nominal",
    "ordinal_scale": "ordinal",
    "magnitude": "interval",
}


class HumanAgreementReport(BaseModel):
    """Model–human agreement beside the human–human ceiling, on the same held-out items."""

    metric: str
    level: str
    n_items: int = Field(description="Held-out items with labels from two or more people and a prediction.")
    n_people: int
    n_human_labels: int
    people: list[str]
    model_human: Interval
    human_ceiling: Interval
    gap: Interval = Field(description="model − ceiling, from the same resamples.")
    per_person: dict[str, float | None] = Field(
        default_factory=dict,
        description="Each person's agreement with the other people, measured as model_human is: "
        "where the model would rank among them.",
    )
    bootstrap: int
    confidence: float
    seed: int


class JudgeAssistedReport(BaseModel):
    """Figures where a judge took part. Never human, never in `agreement_*` columns."""

    judges: list[str]
    n_items: int
    judge_human: dict[str, Interval] = Field(description="Each judge's agreement with the people.")
    model_with_people_and_judges: Interval = Field(
        description="The model's agreement when judges count as raters beside the people."
    )


def level_for(spec: TaskSpec, level: str | None) -> str:
    """The level asked for, else the one the task type implies."""
    if level is not None:
        return level
    if spec.task_type not in LEVEL_OF_TASK:
        raise StateError(
            f"agreement is not defined for task type {spec.task_type!r}; check_convergence handles "
            f"{', '.join(LEVEL_OF_TASK)} (for multi_select, measure each option as yes/no)"
        )
    return LEVEL_OF_TASK[spec.task_type]


def _check_value(value: Any, spec: TaskSpec, level: str, where: str) -> None:
    if isinstance(value, list):
        raise InputError(f"{where}: label {value!r} is a list; agreement compares single labels")
    if level in ("interval", "ratio") and not spec.labels:
        try:
            float(value)
        except (TypeError, ValueError):
            raise InputError(f"{where}: label {value!r} is not a number; level {level!r} needs numbers") from None
        return
    text = value if isinstance(value, str) else number_text(value)
    if spec.labels and text not in spec.labels:
        raise InputError(f"{where}: label {value!r} is not in the label schema {spec.labels}")


def measure_agreement(
    run: RunDir,
    spec: TaskSpec,
    round_: int,
    predictions: Predictions,
    metric: str,
    level: str,
    bootstrap: int,
    confidence: float,
    seed: int,
    progress: ProgressFn = no_progress,
) -> tuple[HumanAgreementReport | None, JudgeAssistedReport | None, str]:
    """Model–human agreement and the ceiling on held-out items (None, with a note, if none fit)."""
    heldout = run.heldout()
    if heldout is None:
        return None, None, "the run has no held-out set"
    heldout_ids = set(heldout.ids)
    standing = current_labels(run.labels())
    people: dict[tuple[str, str], Any] = {}
    judges: dict[tuple[str, str], Any] = {}
    for (item, annotator, _), event in standing.items():
        if item not in heldout_ids:
            continue
        where = f"{run.labels_path}: event {event.event_id} (item {item!r}, annotator {annotator!r})"
        _check_value(event.label, spec, level, where)
        if event.source in HUMAN_SOURCES:
            people[(item, annotator)] = event.label
        elif event.source == "judge":
            judges[(item, JUDGE_PREFIX + annotator)] = event.label
    model_of = dict(zip(predictions.heldout_ids.tolist(), predictions.heldout_pred.tolist(), strict=True))
    per_item: dict[str, int] = {}
    for item, _ in people:
        per_item[item] = per_item.get(item, 0) + 1
    items = sorted(i for i, n in per_item.items() if n >= 2 and i in model_of)
    if not items:
        overlap = sum(1 for n in per_item.values() if n >= 2)
        if overlap == 0:
            note = (
                f"no held-out item has labels from two or more people ({len(per_item)} items have one); "
                "collect overlapping labels (annotators_per_item ≥ 2) to measure the human ceiling"
            )
        else:
            note = f"{overlap} held-out items have labels from two or more people, but the model predicted none of them"
        return None, None, note
    chosen = set(items)
    names = sorted({a for (i, a) in people if i in chosen})
    model = "model"
    while model in names or any(model == a for (_, a) in judges):
        model = "_" + model
    predictions_where = str(ModelDir(run, round_).predictions_path)
    for item in items:
        _check_value(model_of[item], spec, level, f"{predictions_where}: heldout_pred for item {item!r}")

    def value(v: Any) -> Any:
        if level in ("interval", "ratio") and not spec.labels:
            return float(v)
        return str(v)

    rows = [{"unit": i, "coder": a, "value": value(v)} for (i, a), v in people.items() if i in chosen]
    rows += [{"unit": i, "coder": model, "value": value(model_of[i])} for i in items]
    judge_rows = [{"unit": i, "coder": a, "value": value(v)} for (i, a), v in judges.items() if i in chosen]
    labels = spec.labels or None
    source = f"run {run.name!r} held-out labels"
    full = Ratings.from_rows(rows + judge_rows, level=level, labels=labels, source=source)
    humans_only = full.select_coders(names)
    with_model = full.select_coders([*names, model])
    model_stat = statistic(with_model, metric, focus=model)
    ceiling_stat = statistic(humans_only, metric)
    stats = [model_stat, ceiling_stat]
    judge_names = sorted({row["coder"] for row in judge_rows})
    judge_stats: list[Statistic] = []
    if judge_names:
        for judge in judge_names:
            judge_stats.append(statistic(full.select_coders([*names, judge]), metric, focus=judge))
        judge_stats.append(statistic(full.select_coders([*names, *judge_names, model]), metric, focus=model))
    draws = bootstrap_draws(stats + judge_stats, bootstrap, seed=seed, progress=progress) if bootstrap else None
    model_value = model_stat.value()
    ceiling_value = krippendorff_alpha(humans_only) if metric == "krippendorff_alpha" else ceiling_stat.value()
    report = HumanAgreementReport(
        metric=metric,
        level=level,
        n_items=len(items),
        n_people=len(names),
        n_human_labels=len(rows) - len(items),
        people=names,
        model_human=_interval(model_value, None if draws is None else draws[0], confidence),
        human_ceiling=_interval(ceiling_value, None if draws is None else draws[1], confidence),
        gap=_interval(model_value - ceiling_value, None if draws is None else draws[0] - draws[1], confidence),
        per_person={name: finite(statistic(humans_only, metric, focus=name).value()) for name in names},
        bootstrap=bootstrap,
        confidence=confidence,
        seed=seed,
    )
    judged: JudgeAssistedReport | None = None
    if judge_names:
        offset = len(stats)
        judge_human = {
            judge.removeprefix(JUDGE_PREFIX): _interval(
                stat.value(), None if draws is None else draws[offset + k], confidence
            )
            for k, (judge, stat) in enumerate(zip(judge_names, judge_stats, strict=False))
        }
        last = judge_stats[-1]
        judged = JudgeAssistedReport(
            judges=[j.removeprefix(JUDGE_PREFIX) for j in judge_names],
            n_items=len({row["unit"] for row in judge_rows}),
            judge_human=judge_human,
            model_with_people_and_judges=_interval(last.value(), None if draws is None else draws[-1], confidence),
        )
    return report, judged, ""


def _interval(value: float, draws: np.ndarray | None, confidence: float) -> Interval:
    low = high = None
    if draws is not None and draws.size:
        low, high = percentile_interval(draws, confidence)
    return Interval(value=finite(value), ci_low=low, ci_high=high)
