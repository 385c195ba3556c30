"""Held-out evaluation written under gold_* columns: only human gold ever reaches it."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np


def classification_metrics(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 over the schema's labels, and F1 per label."""
    from sklearn.metrics import accuracy_score, f1_score

    gold_a, pred_a = np.asarray(gold, dtype=object), np.asarray(predicted, dtype=object)
    per_class = f1_score(gold_a, pred_a, labels=list(labels), average=None, zero_division=0)
    present = [i for i, label in enumerate(labels) if label in set(gold)]
    return {
        "gold_n": len(gold_a),
        "gold_accuracy": float(accuracy_score(gold_a, pred_a)),
        "gold_macro_f1": float(np.mean(per_class[present])) if present else 0.0,
        "gold_f1_by_class": json.dumps({label: round(float(f), 4) for label, f in zip(labels, per_class, strict=True)}),
    }
