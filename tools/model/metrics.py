"""Held-out evaluation written under gold_* columns: only human gold ever reaches it.

Classification figures follow scikit-learn's convention over the label schema (`labels=` the
schema): a class the model predicts but gold lacks counts as 0 in macro-F1; a class absent from
both is left out of the average (`zero_division=nan`), so a schema class nobody has labeled or
predicted yet does not cap the figure.
Per-class F1 is written as null for a class absent from gold (not 0, which reads "never right").
Ordinal scales also get the errors in scale points (MAE, RMSE) and Spearman's ρ, of the expected
scale point where the probabilities are given (smaller errors than the most probable point's).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np


def label_metrics(
    gold: Sequence[str],
    predicted: Sequence[str],
    labels: Sequence[str],
    ordinal: bool = False,
    prefix: str = "gold",
    expected: np.ndarray | None = None,
) -> dict[str, Any]:
    """`<prefix>_*` figures of predicted labels against true labels (one `Metric` column each);
    `expected`: ordinal only, each row's expected scale point (0..k−1), which the errors then read."""
    from sklearn.metrics import accuracy_score, f1_score

    gold_a, pred_a = np.asarray(gold, dtype=object), np.asarray(predicted, dtype=object)
    labels = list(labels)
    per_class = f1_score(gold_a, pred_a, labels=labels, average=None, zero_division=0)
    in_gold = set(gold_a.tolist())
    figures: dict[str, Any] = {
        f"{prefix}_n": len(gold_a),
        f"{prefix}_accuracy": float(accuracy_score(gold_a, pred_a)),
        f"{prefix}_macro_f1": float(f1_score(gold_a, pred_a, labels=labels, average="macro", zero_division=np.nan)),
        f"{prefix}_f1_by_class": json.dumps(
            {
                label: round(float(f), 4) if label in in_gold else None
                for label, f in zip(labels, per_class, strict=True)
            }
        ),
    }
    if ordinal:
        from alloop.tools.model.task_metrics import scale_metrics

        position = {label: i for i, label in enumerate(labels)}
        g = np.asarray([position[v] for v in gold_a], dtype=float)
        p = expected if expected is not None else np.asarray([position[v] for v in pred_a], dtype=float)
        scale = scale_metrics(g, p, prefix)
        figures |= {k: v for k, v in scale.items() if k != f"{prefix}_r2"}
    return figures
