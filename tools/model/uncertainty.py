"""Uncertainty measures over a round's scores, vectorized (one pass over the pool).

What a score row holds depends on the task type, and so does the measure that fits it:
class probabilities (entropy, margin, least confidence); per-option probabilities for
multi_select (the summed binary entropy over options); a distribution over an ordered scale
(its variance in scale points, since confusing 1 with 5 is worse than 4 with 5); the mean and
predictive sd of a magnitude (the sd); for free_text and cloze, the disagreement among an LM's
sampled answers and the mean token entropy of its answer (model/generative.py).
"""

from __future__ import annotations

import numpy as np

MAGNITUDE_COLUMNS = ("mean", "sd")
"""A magnitude head's score row: predictive mean and standard deviation (on the label scale)."""
GENERATIVE_COLUMNS = ("disagreement", "token_entropy")
"""A generative head's score row (free_text, cloze)."""
TYPE_MEASURE = {
    "multi_select": "entropy",
    "ordinal_scale": "variance",
    "magnitude": "sd",
    "free_text": "disagreement",
    "cloze": "disagreement",
}
"""The measure every uncertainty strategy ranks by for these task types (others: the strategy's own)."""


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=1)


def class_uncertainty(probs: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row measures: least confidence 1−max p, margin p₁−p₂ (small = unsure), entropy in nats."""
    if probs.shape[1] >= 2:
        top2 = -np.partition(-probs, 1, axis=1)[:, :2]
    else:
        top2 = np.concatenate([probs, np.zeros_like(probs)], axis=1)
    return {"least_confidence": 1.0 - top2[:, 0], "margin": top2[:, 0] - top2[:, 1], "entropy": _entropy(probs)}


def option_uncertainty(probs: np.ndarray) -> dict[str, np.ndarray]:
    """multi_select, one probability per option: entropy = Σ binary entropies (nats); least
    confidence = 1 − P(most probable set); margin = the option closest to 0.5, as |2p − 1|."""
    p = np.clip(probs, 0.0, 1.0)
    sure = np.maximum(p, 1.0 - p)
    binary = -(p * np.log(np.clip(p, 1e-12, 1)) + (1 - p) * np.log(np.clip(1 - p, 1e-12, 1)))
    return {"least_confidence": 1.0 - sure.prod(axis=1), "margin": (2 * sure - 1).min(axis=1), "entropy": binary.sum(1)}


def scale_variance(probs: np.ndarray) -> np.ndarray:
    """The variance of an ordinal predictive distribution over scale points 0..k−1."""
    points = np.arange(probs.shape[1], dtype=np.float64)
    mean = probs @ points
    return probs @ points**2 - mean**2


def uncertainty(probs: np.ndarray, task_type: str | None = None) -> dict[str, np.ndarray]:
    """Every measure that fits the task type's score rows, by name (see `TYPE_MEASURE`)."""
    probs = np.asarray(probs, dtype=np.float32)
    if task_type == "multi_select":
        return option_uncertainty(probs)
    if task_type == "magnitude":
        return {"sd": probs[:, MAGNITUDE_COLUMNS.index("sd")]}
    if task_type in ("free_text", "cloze"):
        return {name: probs[:, j] for j, name in enumerate(GENERATIVE_COLUMNS)}
    measures = class_uncertainty(probs)
    if task_type == "ordinal_scale":
        measures["variance"] = scale_variance(probs.astype(np.float64))
    return measures


def measure_for(requested: str, task_type: str | None) -> str:
    """The measure a strategy asking for `requested` ranks by for this task type."""
    return TYPE_MEASURE.get(task_type or "", requested)


def uncertainty_rank_key(measure: str, values: np.ndarray) -> np.ndarray:
    """A key where larger means more uncertain, whatever the measure's own direction."""
    return -values if measure == "margin" else values
