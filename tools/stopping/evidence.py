"""What the stopping rules read, gathered from a run's files (agreement aside).

The rules stay pure functions of `StoppingEvidence`; this module is the one place that turns
labels.jsonl, results.tsv and the rounds' predictions into it.
"""

from __future__ import annotations

import itertools
from datetime import datetime

import numpy as np

from alloop.tools.agreement.statistics import cohens_kappa, finite
from alloop.tools.run.models import ModelDir, model_rounds
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import CV_METRIC_COLUMNS, METRIC_COLUMNS, SCALE_METRICS, ResultRow, TaskSpec
from alloop.tools.stopping.rules import PredictionChange, StoppingEvidence

SPENT_SOURCES = frozenset({"human", "simulated"})
"""Label sources that spend the annotation budget."""


def prediction_kappa(
    a_ids: np.ndarray, a_pred: np.ndarray, b_ids: np.ndarray, b_pred: np.ndarray
) -> tuple[float | None, int]:
    """Cohen's κ between two rounds' predictions on the items both scored, and their number."""
    _, ia, ib = np.intersect1d(a_ids, b_ids, assume_unique=True, return_indices=True)
    if ia.size == 0:
        return None, 0
    return finite(cohens_kappa(a_pred[ia], b_pred[ib])), int(ia.size)


def prediction_changes(run: RunDir, round_: int, k: int) -> list[PredictionChange]:
    """κ between successive scored rounds up to `round_`: only the last k changes, the ones a
    rule with k rounds reads, so older predictions are never loaded."""
    rounds = [r for r in model_rounds(run, having="predictions") if r <= round_][-(k + 1) :]
    scored = [(r, ModelDir(run, r).predictions()) for r in rounds]
    changes = []
    for (before, old), (after, new) in itertools.pairwise(scored):
        kappa, shared = prediction_kappa(old.pool_ids, old.pool_pred, new.pool_ids, new.pool_pred)
        changes.append(PredictionChange(round_from=before, round_to=after, kappa=kappa, n_items=shared))
    return changes


def _series(rows: list[ResultRow], source: str, metric: str) -> list[tuple[int, float]]:
    """(round, value) of one figure: the `gold_*` or `cv_*` column of the metric."""
    column = (METRIC_COLUMNS if source == "gold" else CV_METRIC_COLUMNS).get(metric)
    values = ((row.round, getattr(row, column)) for row in rows) if column else ()
    return [(r, float(v)) for r, v in values if v is not None]


def gather_evidence(run: RunDir, spec: TaskSpec, round_: int, now: datetime) -> StoppingEvidence:
    """What the rules read, except agreement: labels spent, metric history, prediction changes."""
    events = run.labels()
    spent = sum(1 for e in events if e.source in SPENT_SOURCES and e.status == "submitted")
    rows = [row for row in run.results() if row.round <= round_]
    source = spec.model.decision_source
    history = _series(rows, source, spec.metric)
    metric_note = ""
    if spec.task_type == "magnitude" and spec.metric not in SCALE_METRICS:
        metric_note = (
            f"a magnitude run has no {spec.metric}; set metric to mae, rmse or spearman with interview_spec so "
            "the plateau rule has a figure to read"
        )
    elif source == "cv" and not history and _series(rows, "gold", spec.metric):
        metric_note = (
            f"no cross-validated {spec.metric} in results.tsv (the head gives none); set model.decision_source "
            "to gold with interview_spec to let the plateau rule read the held-out set"
        )
    changes: list[PredictionChange] = []
    note = ""
    if spec.stopping.stability_kappa is not None:
        if spec.task_type == "magnitude":
            note = (
                "stable_predictions compares predicted categories; magnitudes are numbers (use the plateau rule on mae)"
            )
        else:
            changes = prediction_changes(run, round_, spec.stopping.stability_rounds)
    return StoppingEvidence(
        round=round_,
        n_human_labels=spent,
        prediction_note=note,
        metric=spec.metric,
        metric_source=source,
        metric_note=metric_note,
        metric_history=history,
        prediction_changes=changes,
        started=_parse_time(spec.created),
        now=now,
    )


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
