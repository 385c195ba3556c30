"""A run's model against its annotators: model–human agreement beside the human ceiling.

The human ceiling is the agreement among people on every item two or more of them labeled:
held-out items, and pool items where annotators overlap (Argilla's overlap, jsPsych lists).
The model is measured on held-out items only, as one more rater on those two or more people
labeled: it trained on pool labels, so its agreement there would flatter it. Both figures come
with bootstrap intervals over items, drawn from the same resamples (held-out and pool items
resampled apart, so each resample keeps as many of each); their gap has an interval too. When
people overlap on the pool but not on held-out items, the ceiling is reported alone, with a note.

The level fits the task type (`LEVEL_OF_TASK`): nominal for classes, ordinal for scales,
interval for magnitudes, MASI (or Jaccard) set distance for multi-select option sets, and exact
match of normalized text for written answers (free_text, cloze; see `answers`).

Human labels are the standing label events of sources in `HUMAN_SOURCES`. Judge labels never
count as human: where a judge labeled held-out items, its agreement with the people and the
model's agreement with people and judges together are reported apart.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from alloop.tools.agreement.answers import NORMALIZATION, answer_key
from alloop.tools.agreement.bootstrap import bootstrap as bootstrap_draws
from alloop.tools.agreement.bootstrap import percentile_interval
from alloop.tools.agreement.ratings import LEVELS, Ratings, number_text
from alloop.tools.agreement.sets import OPTION_SEPARATOR, SET_LEVELS, option_set
from alloop.tools.agreement.statistics import Statistic, finite, krippendorff_alpha, statistic
from alloop.tools.base import ProgressFn, no_progress
from alloop.tools.errors import InputError, StateError
from alloop.tools.run.labels import HUMAN_SOURCES, current_labels
from alloop.tools.run.models import ModelDir, Predictions
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import LabelEvent, TaskSpec
from alloop.tools.stopping.rules import Interval

JUDGE_PREFIX = "judge:"
"""Judges enter the reliability data under this prefix, apart from people of the same name."""
LEVEL_OF_TASK = {
    "binary": "nominal",
    "categorical": "nominal",
    "forced_choice": "nominal",
    "ordinal_scale": "ordinal",
    "magnitude": "interval",
    "multi_select": "masi",
    "free_text": "nominal",
    "cloze": "nominal",
}
"""The level each task type is measured at unless one is asked for."""
WRITTEN_TASKS = frozenset({"free_text", "cloze"})
_SINGLE_LEVELS = tuple(level for level in LEVELS if level not in SET_LEVELS)
_LEVELS_OF_TASK: dict[str, tuple[str, ...]] = {
    "multi_select": (*SET_LEVELS, "nominal"),
    "free_text": ("nominal",),
    "cloze": ("nominal",),
}
_DISTANCE_OF_LEVEL = {
    "nominal": "exact match",
    "ordinal": "ordinal (rank) distance",
    "interval": "squared difference",
    "ratio": "squared relative difference",
    "masi": "MASI distance between option sets",
    "jaccard": "Jaccard distance between option sets",
}

CeilingSource = Literal["held-out", "pool", "held-out and pool"]


class HumanAgreementReport(BaseModel):
    """Model–human agreement on held-out items beside the human–human ceiling."""

    metric: str
    level: str
    distance: str = Field("", description="How two values are compared at this level, in words.")
    n_items: int = Field(
        description="Held-out items with labels from two or more people and a prediction: what model_human reads."
    )
    n_people: int
    n_human_labels: int = Field(description="People's labels on the items the ceiling reads.")
    people: list[str]
    model_human: Interval = Field(description="Undefined (None) when no held-out item fits.")
    human_ceiling: Interval
    ceiling_from: CeilingSource = Field("held-out", description="Where the items the ceiling reads come from.")
    ceiling_items: int = Field(0, description="Items with labels from two or more people: what the ceiling reads.")
    ceiling_pool_items: int = Field(0, description="Of those, pool items.")
    gap: Interval = Field(description="model − ceiling, from the same resamples.")
    per_person: dict[str, float | None] = Field(
        default_factory=dict,
        description="Each person's agreement with the other people on the ceiling's items, measured as "
        "model_human is: where the model would rank among them.",
    )
    bootstrap: int
    confidence: float
    seed: int
    note: str = Field("", description="What the figures rest on, where that needs saying.")


class JudgeAssistedReport(BaseModel):
    """Figures where a judge took part. Never human, never in `agreement_*` columns."""

    judges: list[str]
    n_items: int
    judge_human: dict[str, Interval] = Field(description="Each judge's agreement with the people.")
    model_with_people_and_judges: Interval = Field(
        description="The model's agreement when judges count as raters beside the people."
    )


def level_for(spec: TaskSpec, level: str | None) -> str:
    """The level asked for, else the one the task type implies; a level that does not fit the
    task type's labels is refused."""
    if spec.task_type not in LEVEL_OF_TASK:
        raise StateError(
            f"agreement is not defined for task type {spec.task_type!r}; check_convergence handles "
            f"{', '.join(LEVEL_OF_TASK)}"
        )
    if level is None:
        return LEVEL_OF_TASK[spec.task_type]
    allowed = _LEVELS_OF_TASK.get(spec.task_type, _SINGLE_LEVELS)
    if level not in allowed:
        raise InputError(
            f"level {level!r} does not fit task type {spec.task_type!r}; use {' or '.join(allowed)} "
            f"(default {LEVEL_OF_TASK[spec.task_type]})"
        )
    return level


def distance_of(spec: TaskSpec, level: str) -> str:
    """How values are compared, in words, for a report."""
    if spec.task_type in WRITTEN_TASKS:
        return f"exact match of normalized answers ({NORMALIZATION})"
    if spec.task_type == "multi_select" and level == "nominal":
        return "exact match of option sets"
    return _DISTANCE_OF_LEVEL[level]


def _check_value(value: Any, spec: TaskSpec, level: str, where: str) -> None:
    if spec.task_type == "multi_select":
        options = option_set(value)
        if options is None:
            raise InputError(
                f"{where}: label {value!r} is not an option set; a multi_select label is a list of options "
                f"or text 'a{OPTION_SEPARATOR}b'"
            )
        unknown = [o for o in options if o not in spec.labels]
        if unknown:
            raise InputError(f"{where}: options {unknown} of label {value!r} are not in the label schema {spec.labels}")
        return
    if spec.task_type in WRITTEN_TASKS:
        if not isinstance(value, str) and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise InputError(f"{where}: answer {value!r} is not text; a {spec.task_type} label is written text")
        return
    if isinstance(value, list):
        raise InputError(f"{where}: label {value!r} is a list; task type {spec.task_type!r} takes single labels")
    if level in ("interval", "ratio") and not spec.labels:
        try:
            float(value)
        except (TypeError, ValueError):
            raise InputError(f"{where}: label {value!r} is not a number; level {level!r} needs numbers") from None
        return
    text = value if isinstance(value, str) else number_text(value)
    if spec.labels and text not in spec.labels:
        raise InputError(f"{where}: label {value!r} is not in the label schema {spec.labels}")


def _coded(value: Any, spec: TaskSpec, level: str) -> Any:
    """A checked label as the value the reliability data holds."""
    if spec.task_type in WRITTEN_TASKS:
        return answer_key(value, spec.task_type)
    if spec.task_type == "multi_select":
        options = sorted(option_set(value) or [], key=spec.labels.index)
        return options if level in SET_LEVELS else OPTION_SEPARATOR.join(options)
    if level in ("interval", "ratio") and not spec.labels:
        return float(value)
    return str(value)


def _no_ceiling_note(per_item: dict[str, int], heldout_ids: set[str]) -> str:
    held = sum(1 for item in per_item if item in heldout_ids)
    pool = len(per_item) - held
    return (
        f"no item has labels from two or more people ({held} held-out and {pool} pool items have one); "
        "collect overlapping labels (annotators_per_item ≥ 2) to measure the human ceiling"
    )


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
    """Model–human agreement on held-out items and the ceiling on held-out and pool items (None,
    with a note, where no item has labels from two people); the note also says what is missing."""
    heldout = run.heldout()
    heldout_ids = set(heldout.ids) if heldout is not None else set()
    standing = current_labels(run.labels())
    people: dict[tuple[str, str], Any] = {}
    judges: dict[tuple[str, str], Any] = {}
    event_of: dict[tuple[str, str], LabelEvent] = {}
    for (item, annotator, _), event in standing.items():
        if event.source in HUMAN_SOURCES:
            people[(item, annotator)] = event.label
            event_of[(item, annotator)] = event
        elif event.source == "judge" and item in heldout_ids:
            judges[(item, JUDGE_PREFIX + annotator)] = event.label
            event_of[(item, JUDGE_PREFIX + annotator)] = event
    per_item: dict[str, int] = {}
    for item, _ in people:
        per_item[item] = per_item.get(item, 0) + 1
    overlap = {item for item, n in per_item.items() if n >= 2}
    if not overlap:
        return None, None, _no_ceiling_note(per_item, heldout_ids)
    model_of = dict(zip(predictions.heldout_ids.tolist(), predictions.heldout_pred.tolist(), strict=True))
    items = sorted(i for i in overlap if i in heldout_ids and i in model_of)
    chosen = set(items)
    names = sorted({a for (i, a) in people if i in overlap})
    model = "model"
    while model in names or any(model == a for (_, a) in judges):
        model = "_" + model
    predictions_where = str(ModelDir(run, round_).predictions_path)
    human = {key: v for key, v in people.items() if key[0] in overlap}
    judged_labels = {key: v for key, v in judges.items() if key[0] in chosen}
    for (item, coder), v in (human | judged_labels).items():
        event = event_of[(item, coder)]
        where = f"{run.labels_path}: event {event.event_id} (item {item!r}, annotator {event.annotator!r})"
        _check_value(v, spec, level, where)
    for item in items:
        _check_value(model_of[item], spec, level, f"{predictions_where}: heldout_pred for item {item!r}")

    rows = [{"unit": i, "coder": a, "value": _coded(v, spec, level)} for (i, a), v in human.items()]
    rows += [{"unit": i, "coder": model, "value": _coded(model_of[i], spec, level)} for i in items]
    judge_rows = [{"unit": i, "coder": a, "value": _coded(v, spec, level)} for (i, a), v in judged_labels.items()]
    # Option sets are checked against the options; their text at level nominal is no schema label.
    schema = spec.task_type not in WRITTEN_TASKS and (spec.task_type != "multi_select" or level in SET_LEVELS)
    labels = spec.labels if spec.labels and schema else None
    full = Ratings.from_rows(rows + judge_rows, level=level, labels=labels, source=f"run {run.name!r} labels")
    humans_only = full.select_coders(names)
    ceiling_stat = statistic(humans_only, metric)
    stats: list[Statistic] = [ceiling_stat]
    if items:
        stats.append(statistic(full.select_coders([*names, model]), metric, focus=model))
    judge_names = sorted({row["coder"] for row in judge_rows})
    if judge_names:
        for judge in judge_names:
            stats.append(statistic(full.select_coders([*names, judge]), metric, focus=judge))
        stats.append(statistic(full.select_coders([*names, *judge_names, model]), metric, focus=model))
    strata = np.array([unit not in heldout_ids for unit in full.units], dtype=np.int64)
    draws = bootstrap_draws(stats, bootstrap, seed=seed, progress=progress, strata=strata) if bootstrap else None

    def drawn(k: int) -> np.ndarray | None:
        return None if draws is None else draws[k]

    ceiling_value = krippendorff_alpha(humans_only) if metric == "krippendorff_alpha" else ceiling_stat.value()
    ceiling = _interval(ceiling_value, drawn(0), confidence)
    pool_items = len(overlap - heldout_ids)
    source: CeilingSource = (
        "pool" if pool_items == len(overlap) else "held-out" if not pool_items else "held-out and pool"
    )
    notes = []
    if items:
        model_value = stats[1].value()
        model_human = _interval(model_value, drawn(1), confidence)
        gap_draws = None if draws is None else draws[1] - draws[0]
        gap = _interval(model_value - ceiling_value, gap_draws, confidence)
        if pool_items:
            notes.append(
                f"the ceiling also reads {pool_items} pool items; the model is measured on held-out items only "
                "(it trained on pool labels)"
            )
    else:
        model_human = gap = Interval()
        notes.append(_no_model_note(heldout is not None, len(overlap & heldout_ids), pool_items))
    report = HumanAgreementReport(
        metric=metric,
        level=level,
        distance=distance_of(spec, level),
        n_items=len(items),
        n_people=len(names),
        n_human_labels=len(human),
        people=names,
        model_human=model_human,
        human_ceiling=ceiling,
        ceiling_from=source,
        ceiling_items=len(overlap),
        ceiling_pool_items=pool_items,
        gap=gap,
        per_person={name: finite(statistic(humans_only, metric, focus=name).value()) for name in names},
        bootstrap=bootstrap,
        confidence=confidence,
        seed=seed,
        note="; ".join(notes),
    )
    judged: JudgeAssistedReport | None = None
    if judge_names:
        judge_human = {
            judge.removeprefix(JUDGE_PREFIX): _interval(stats[2 + k].value(), drawn(2 + k), confidence)
            for k, judge in enumerate(judge_names)
        }
        judged = JudgeAssistedReport(
            judges=[j.removeprefix(JUDGE_PREFIX) for j in judge_names],
            n_items=len({row["unit"] for row in judge_rows}),
            judge_human=judge_human,
            model_with_people_and_judges=_interval(stats[-1].value(), drawn(len(stats) - 1), confidence),
        )
    return report, judged, report.note


def _no_model_note(has_heldout: bool, heldout_items: int, pool_items: int) -> str:
    """Why the ceiling stands alone."""
    where = " and ".join(f"{n} {kind} items" for n, kind in ((heldout_items, "held-out"), (pool_items, "pool")) if n)
    ceiling = f"the human ceiling is reported alone, on {where}"
    if not has_heldout:
        return f"model–human agreement needs a held-out set (the run has none); {ceiling}"
    if heldout_items:
        return (
            f"{heldout_items} held-out items have labels from two or more people, but the model predicted "
            f"none of them; {ceiling}"
        )
    return (
        "model–human agreement needs held-out items labeled by two or more people (none yet: ask for held-out "
        f"overlap, e.g. export_batch include_heldout); {ceiling}"
    )


def _interval(value: float, draws: np.ndarray | None, confidence: float) -> Interval:
    low = high = None
    if draws is not None and draws.size:
        low, high = percentile_interval(draws, confidence)
    return Interval(value=finite(value), ci_low=low, ci_high=high)
