"""check_convergence: is the model as reliable as the humans, and should the run stop?

On the held-out items that two or more people labeled, the model is one more rater. Its
agreement with the people is measured on the pairs (model, person) and set beside the
agreement among the people themselves (the human–human ceiling); both come with bootstrap
intervals over items, drawn from the same resamples, so their gap has an interval too.

Human labels are label events of source human, import, seed or simulated on held-out items
(the latest per item and annotator; superseded and discarded ones left out). Judge labels
never count as human: where a judge labeled held-out items, its agreement with the people and
the model's agreement with people and judges together are reported apart, under
`judge_assisted`, and never enter `agreement_*` columns.

The model's labels come from `models/round_XX/predictions.npz` (see `read_round_predictions`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from alloop.tools import agreement as ag
from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.errors import InputError, StateError
from alloop.tools.run.labels import HUMAN_SOURCES, live_events
from alloop.tools.run.models import predictions_path
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import LabelEvent, TaskSpec
from alloop.tools.stopping.rules import (
    METRIC_COLUMNS,
    AgreementEvidence,
    Interval,
    PredictionChange,
    RuleState,
    StoppingEvidence,
    decide,
    rules_from_spec,
)

SPENT_SOURCES = frozenset({"human", "simulated"})
"""Label sources that spend the annotation budget."""
JUDGE_PREFIX = "judge:"
"""Judges enter the reliability data under this prefix, apart from people of the same name."""
LEVEL_OF_TASK = {
    "binary": "nominal",
    "categorical": "nominal",
    "forced_choice": "nominal",
    "ordinal_scale": "ordinal",
    "magnitude": "interval",
}


# ---------------------------------------------------------------------------------------
# Reading the model's predictions
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoundPredictions:
    """A round's model labels on the held-out set and on the pool (label strings)."""

    round: int
    heldout_ids: np.ndarray
    heldout_pred: np.ndarray
    pool_ids: np.ndarray
    pool_pred: np.ndarray


def read_round_predictions(run: RunDir, round_: int) -> RoundPredictions:
    """Read `models/round_XX/predictions.npz` (written by score_pool through
    `alloop.tools.run.models.save_predictions`): arrays heldout_ids, heldout_pred, pool_ids and
    pool_pred (label strings). The one place check_convergence reads a model's labels.
    """
    path = predictions_path(run, round_)
    if not path.is_file():
        if (run.model_dir(round_) / "card.json").is_file():
            raise StateError(
                f"run {run.name!r} has no predictions for round {round_} ({path}): its model is trained but "
                f"not scored; run score_pool with round={round_} first"
            )
        raise StateError(
            f"run {run.name!r} has no predictions for round {round_} ({path}); train (train_glmm) and score "
            "(score_pool) that round first"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ("heldout_ids", "heldout_pred", "pool_ids", "pool_pred") if key in data}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc}); rewrite it with numpy.savez") from exc
    missing = {"heldout_ids", "heldout_pred", "pool_ids", "pool_pred"} - set(arrays)
    if missing:
        raise InputError(f"{path}: missing arrays {sorted(missing)}")
    for ids, pred in (("heldout_ids", "heldout_pred"), ("pool_ids", "pool_pred")):
        if arrays[ids].shape != arrays[pred].shape or arrays[ids].ndim != 1:
            raise InputError(f"{path}: {ids} and {pred} must be 1-D and of one length")
    return RoundPredictions(
        round=round_,
        heldout_ids=arrays["heldout_ids"].astype(str),
        heldout_pred=arrays["heldout_pred"].astype(str),
        pool_ids=arrays["pool_ids"].astype(str),
        pool_pred=arrays["pool_pred"].astype(str),
    )


def prediction_rounds(run: RunDir) -> list[int]:
    """Rounds that left a predictions file."""
    models = run.path / "models"
    if not models.is_dir():
        return []
    rounds = (int(folder.name.rsplit("_", 1)[1]) for folder in models.glob("round_[0-9][0-9]"))
    return sorted(r for r in rounds if predictions_path(run, r).is_file())


# ---------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------
def current_labels(events: Sequence[LabelEvent]) -> dict[tuple[str, str, bool], LabelEvent]:
    """The standing label per (item, annotator, is_judge): the latest, minus superseded and
    discarded ones. A judge and a person never share a key, whatever their names."""
    standing: dict[tuple[str, str, bool], LabelEvent] = {}
    for event in live_events(events):
        key = (event.item_id, event.annotator, event.source == "judge")
        if event.status == "discarded":
            standing.pop(key, None)
            continue
        standing[key] = event
    return standing


def prediction_kappa(
    a_ids: np.ndarray, a_pred: np.ndarray, b_ids: np.ndarray, b_pred: np.ndarray
) -> tuple[float | None, int]:
    """Cohen's κ between two rounds' predictions on the items both scored."""
    _, ia, ib = np.intersect1d(a_ids, b_ids, assume_unique=True, return_indices=True)
    if ia.size == 0:
        return None, 0
    labels, codes = np.unique(np.concatenate([a_pred[ia], b_pred[ib]]), return_inverse=True)
    v = labels.size
    x, y = codes[: ia.size], codes[ia.size :]
    conf = np.bincount(x * v + y, minlength=v * v).reshape(1, v, v).astype(np.float64)
    kappa = float(ag._kappa_from_confusion(conf, 1.0 - np.eye(v))[0])
    return (kappa if math.isfinite(kappa) else None), int(ia.size)


def _interval(value: float, draws: np.ndarray | None, confidence: float) -> Interval:
    low = high = None
    if draws is not None and draws.size:
        low, high = ag.percentile_interval(draws, confidence)
    return Interval(value=value if math.isfinite(value) else None, ci_low=low, ci_high=high)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------
# The tool
# ---------------------------------------------------------------------------------------
class CheckConvergenceInput(RunArgs):
    round: int | None = Field(None, ge=0, le=99, description="Round to judge; default the latest in results.tsv.")
    metric: ag.Metric | None = Field(None, description="Agreement metric; default spec.stopping.agreement_metric.")
    level: ag.Level | None = Field(
        None, description="Level of measurement; default from the task type (nominal, ordinal or interval)."
    )
    bootstrap: int = Field(1000, ge=0, le=100_000, description="Bootstrap resamples over items (0: no intervals).")
    confidence: float = Field(0.95, gt=0, lt=1)
    seed: int = 0
    record: bool = Field(True, description="Write the decision and agreement into the round's results.tsv row.")


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


class CheckConvergenceOutput(BaseModel):
    run: str
    round: int
    decision: str = Field(description="stop or go.")
    reasons: list[str]
    rules: list[RuleState]
    agreement: HumanAgreementReport | None
    agreement_note: str = ""
    judge_assisted: JudgeAssistedReport | None = None
    recorded: bool
    next_step: str


def _level_for(spec: TaskSpec, level: str | None) -> str:
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
    text = value if isinstance(value, str) else ag.number_text(value)
    if spec.labels and text not in spec.labels:
        raise InputError(f"{where}: label {value!r} is not in the label schema {spec.labels}")


def measure_agreement(
    run: RunDir,
    spec: TaskSpec,
    predictions: RoundPredictions,
    metric: str,
    level: str,
    bootstrap: int,
    confidence: float,
    seed: int,
    progress: Any = None,
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
    predictions_where = str(predictions_path(run, predictions.round))
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
    full = ag.Ratings.from_rows(rows + judge_rows, level=level, labels=labels, source=source)
    humans_only = full.select_coders(names)
    with_model = full.select_coders([*names, model])
    model_stat = ag.statistic(with_model, metric, focus=model)
    ceiling_stat = ag.statistic(humans_only, metric)
    stats = [model_stat, ceiling_stat]
    judge_names = sorted({row["coder"] for row in judge_rows})
    judge_stats: list[ag.Statistic] = []
    if judge_names:
        for judge in judge_names:
            judge_stats.append(ag.statistic(full.select_coders([*names, judge]), metric, focus=judge))
        judge_stats.append(ag.statistic(full.select_coders([*names, *judge_names, model]), metric, focus=model))
    draws = ag.bootstrap(stats + judge_stats, bootstrap, seed=seed, progress=progress) if bootstrap else None
    model_value = model_stat.value()
    ceiling_value = ag.krippendorff_alpha(humans_only) if metric == "krippendorff_alpha" else ceiling_stat.value()
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
        per_person={name: _finite(ag.statistic(humans_only, metric, focus=name).value()) for name in names},
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


def gather_evidence(run: RunDir, spec: TaskSpec, round_: int, now: datetime | None = None) -> StoppingEvidence:
    """What the rules read, except agreement: labels spent, metric history, prediction changes."""
    events = run.labels()
    spent = sum(1 for e in events if e.source in SPENT_SOURCES and e.status == "submitted")
    column = METRIC_COLUMNS.get(spec.metric)
    history: list[tuple[int, float]] = []
    for row in run.results():
        value = getattr(row, column) if column else None
        if value is not None and row.round <= round_:
            history.append((row.round, float(value)))
    changes: list[PredictionChange] = []
    if spec.stopping.stability_kappa is not None and spec.task_type != "magnitude":
        # Only the rounds the rule reads: k changes need the last k + 1 scored rounds.
        rounds = [r for r in prediction_rounds(run) if r <= round_][-(spec.stopping.stability_rounds + 1) :]
        previous: RoundPredictions | None = None
        for r in rounds:
            current = read_round_predictions(run, r)
            if previous is not None:
                kappa, shared = prediction_kappa(
                    previous.pool_ids, previous.pool_pred, current.pool_ids, current.pool_pred
                )
                changes.append(PredictionChange(round_from=previous.round, round_to=r, kappa=kappa, n_items=shared))
            previous = current
    note = ""
    if spec.stopping.stability_kappa is not None and spec.task_type == "magnitude":
        note = "stable_predictions compares predicted categories; magnitudes are numbers (use the plateau rule on mae)"
    return StoppingEvidence(
        round=round_,
        n_human_labels=spent,
        prediction_note=note,
        metric=spec.metric,
        metric_history=history,
        prediction_changes=changes,
        started=_parse_time(spec.created),
        now=now,
    )


def evaluate(args: CheckConvergenceInput, ctx: ToolContext, now: datetime | None = None) -> CheckConvergenceOutput:
    """check_convergence without the tool wrapper (`now` can be fixed for tests)."""
    run = ctx.root.run(args.run)
    spec = run.spec()
    results = run.results()
    round_ = args.round
    if round_ is None:
        if not results:
            raise StateError(f"run {run.name!r} has no rounds in results.tsv yet; train a round first")
        round_ = max(r.round for r in results)
    metric = args.metric or spec.stopping.agreement_metric
    level = _level_for(spec, args.level)
    predictions = read_round_predictions(run, round_)

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total, f"bootstrap {done}/{total}")

    report, judged, note = measure_agreement(
        run, spec, predictions, metric, level, args.bootstrap, args.confidence, args.seed, progress
    )
    evidence = gather_evidence(run, spec, round_, now)
    if report is not None:
        evidence.agreement = AgreementEvidence(
            metric=metric,
            level=level,
            n_items=report.n_items,
            model_human=report.model_human,
            human_ceiling=report.human_ceiling,
            gap=report.gap,
        )
    evidence.agreement_note = note
    decision = decide(rules_from_spec(spec), evidence)
    recorded = False
    if args.record:
        with run.lock():
            run.update_result(
                round_,
                stop_decision=decision.decision,
                stop_reasons="; ".join(decision.reasons),
                agreement_model_human=None if report is None else report.model_human.value,
                agreement_human_ceiling=None if report is None else report.human_ceiling.value,
            )
        recorded = True
    if decision.stop:
        next_step = "stop the loop: report the results (results.tsv) and the reasons above"
    else:
        next_step = "go on: select the next batch (select_batch) and collect its labels"
    return CheckConvergenceOutput(
        run=run.name,
        round=round_,
        decision=decision.decision,
        reasons=decision.reasons,
        rules=decision.rules,
        agreement=report,
        agreement_note=note,
        judge_assisted=judged,
        recorded=recorded,
        next_step=next_step,
    )


def check_convergence(args: CheckConvergenceInput, ctx: ToolContext) -> CheckConvergenceOutput:
    """Decide whether the active-learning run should stop, and say why.

    On held-out items that two or more people labeled, the round's model counts as one more
    rater: its agreement with the people (Krippendorff's α, Fleiss' κ, Cohen's κ or percent
    agreement; default from spec.stopping) is set beside the people's agreement with each
    other (the human ceiling), both with bootstrap intervals over items. Judge labels are
    never counted as human; where a judge took part its figures are reported apart.

    Then every stopping rule of spec.json is evaluated: max rounds, label budget (count or
    cost), plateau of the held-out metric (|Δ| < ε for k rounds), stabilizing pool
    predictions (κ between successive rounds ≥ threshold for k rounds), agreement with
    people (an absolute threshold or the ceiling minus a margin), and a time cap. Returns
    stop or go, each rule's state and evidence, and (unless record=false) writes
    stop_decision, stop_reasons, agreement_model_human and agreement_human_ceiling into the
    round's row of results.tsv. Needs the round's models/round_XX/predictions.npz.
    """
    return evaluate(args, ctx)


SPEC = ToolSpec(
    name="check_convergence",
    fn=check_convergence,
    input_model=CheckConvergenceInput,
    output_model=CheckConvergenceOutput,
    behaviour="writes",
    idempotent=True,
)
