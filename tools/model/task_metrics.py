"""Held-out figures for the task types whose predictions are not one class: option sets and numbers.

Written under the same `<prefix>_*` columns as `label_metrics` (gold_* on held-out gold, cv_* out
of fold), each computed by scikit-learn: multi_select gets subset accuracy, micro/macro-F1 over
the options, Hamming loss and the mean Jaccard index of the sets; scales (an ordinal's expected
scale point, a magnitude's predicted mean) get MAE, RMSE, R² and Spearman's ρ.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np


def option_matrix(answers: Sequence[Any], options: Sequence[str]) -> np.ndarray:
    """Answers (lists of options, or 'a|b' strings) as an n × k 0/1 matrix over the options."""
    position = {option: j for j, option in enumerate(options)}
    out = np.zeros((len(answers), len(options)), dtype=np.int64)
    for i, answer in enumerate(answers):
        chosen = answer if isinstance(answer, list | tuple) else [v for v in str(answer).split("|") if v]
        for option in chosen:
            out[i, position[str(option)]] = 1
    return out


def option_text(row: np.ndarray, options: Sequence[str]) -> str:
    """One 0/1 row as the set's text, options in schema order joined by '|' ('' for none)."""
    return "|".join(option for option, on in zip(options, row, strict=True) if on)


def multi_select_metrics(gold: np.ndarray, predicted: np.ndarray, options: Sequence[str], prefix: str = "gold"):
    """`<prefix>_*` figures of predicted option sets (0/1 matrices) against the true ones."""
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss, jaccard_score

    per_option = f1_score(gold, predicted, average=None, zero_division=0)
    in_gold = gold.sum(axis=0) > 0
    return {
        f"{prefix}_n": len(gold),
        f"{prefix}_accuracy": float(accuracy_score(gold, predicted)),
        f"{prefix}_macro_f1": float(f1_score(gold, predicted, average="macro", zero_division=0)),
        f"{prefix}_micro_f1": float(f1_score(gold, predicted, average="micro", zero_division=0)),
        f"{prefix}_hamming_loss": float(hamming_loss(gold, predicted)),
        f"{prefix}_jaccard": float(jaccard_score(gold, predicted, average="samples", zero_division=1)),
        f"{prefix}_f1_by_class": json.dumps(
            {o: round(float(f), 4) if seen else None for o, f, seen in zip(options, per_option, in_gold, strict=True)}
        ),
    }


def scale_metrics(gold: np.ndarray, predicted: np.ndarray, prefix: str = "gold") -> dict[str, Any]:
    """`<prefix>_*` errors of predicted numbers (scale points or magnitudes): MAE, RMSE, R², Spearman."""
    from scipy.stats import spearmanr
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    gold, predicted = np.asarray(gold, dtype=float), np.asarray(predicted, dtype=float)
    varied = len(gold) > 1 and gold.std() > 0
    rho = spearmanr(gold, predicted).statistic if varied and predicted.std() > 0 else None
    return {
        f"{prefix}_mae": float(mean_absolute_error(gold, predicted)),
        f"{prefix}_rmse": float(root_mean_squared_error(gold, predicted)),
        f"{prefix}_r2": float(r2_score(gold, predicted)) if varied else None,
        f"{prefix}_spearman": None if rho is None or not np.isfinite(rho) else float(rho),
    }


def expected_points(probs: np.ndarray) -> np.ndarray:
    """An ordinal distribution's expected scale point (0..k−1): the prediction MAE and RMSE read."""
    return np.asarray(probs, dtype=np.float64) @ np.arange(probs.shape[1], dtype=np.float64)
