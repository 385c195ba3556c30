"""Judge-assisted figures for results.tsv, kept apart from the gold figures by construction.

Nothing here reads labels.jsonl: the judge's labels come from judge_round_XX.jsonl, gold from the
held-out set's `label` column, and model predictions from the round's model folder.
So no `gold_*` figure can take in a judge label, and no `judge_*` figure claims to be human.

- `judge_n`: items with a valid judge label in the round (any use).
- `judge_agreement_with_gold`: Cohen's κ between the judge and held-out gold, on the items both
  labeled (linear weights on an ordinal scale); empty when fewer than two such items or κ is
  undefined (one class only).
- `judge_accuracy`: the round model's accuracy with the judge's labels as reference, on
  judge-labeled items that have a model prediction (a weak interim evaluation, never gold).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alloop.tools.agreement.statistics import cohens_kappa, finite
from alloop.tools.judge.records import JudgeRecord
from alloop.tools.run.models import ModelDir
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import CLASSIFICATION_TASKS

SINGLE_LABEL = CLASSIFICATION_TASKS | {"ordinal_scale"}


def judge_labels(run: RunDir, round_: int) -> dict[str, Any]:
    """item id → the judge's latest valid label in the round."""
    labels: dict[str, Any] = {}
    for row in run.judge_rows(round_):
        record = JudgeRecord.model_validate(row)
        if record.status == "ok" and record.label is not None:
            labels[record.item_id] = record.label
    return labels


def round_predictions(run: RunDir, round_: int) -> dict[str, str]:
    """item id → the round model's predicted label, pool and held-out; empty before score_pool ran.

    A predictions file that is there but unreadable is an error, not an empty answer.
    """
    model = ModelDir(run, round_)
    if not model.has_predictions():
        return {}
    preds = model.predictions()
    out = dict(zip(preds.pool_ids.tolist(), preds.pool_pred.tolist(), strict=True))
    out.update(zip(preds.heldout_ids.tolist(), preds.heldout_pred.tolist(), strict=True))
    return out


def judge_figures(run: RunDir, round_: int, predictions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The round's judge_* columns, plus the counts behind them (for the tool's output)."""
    spec = run.spec()
    labels = judge_labels(run, round_)
    figures: dict[str, Any] = {
        "judge_n": len(labels),
        "judge_agreement_with_gold": None,
        "judge_accuracy": None,
        "n_judge_and_gold": 0,
        "percent_agreement_with_gold": None,
        "n_judge_and_prediction": 0,
    }
    if spec.task_type not in SINGLE_LABEL:
        return figures
    gold = run.heldout_gold()
    if gold:
        both = [i for i in labels if i in gold and gold[i] not in (None, "")]
        figures["n_judge_and_gold"] = len(both)
        if both:
            judged = [str(labels[i]) for i in both]
            truth = [str(gold[i]) for i in both]
            figures["percent_agreement_with_gold"] = sum(a == b for a, b in zip(judged, truth, strict=True)) / len(both)
            figures["judge_agreement_with_gold"] = _kappa(truth, judged, spec.labels, spec.task_type == "ordinal_scale")
    if predictions:
        shared = [i for i in labels if i in predictions and predictions[i] is not None]
        figures["n_judge_and_prediction"] = len(shared)
        if shared:
            figures["judge_accuracy"] = sum(str(predictions[i]) == str(labels[i]) for i in shared) / len(shared)
    return figures


def _kappa(a: list[str], b: list[str], labels: list[str], ordinal: bool) -> float | None:
    """Cohen's κ of the judge against gold (linear weights on an ordinal scale); None where undefined."""
    if len(a) < 2:
        return None
    return finite(cohens_kappa(a, b, domain=labels, level="ordinal" if ordinal else "nominal"))
