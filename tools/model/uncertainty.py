"""Uncertainty measures over a probability matrix, vectorized (one pass over the pool)."""

from __future__ import annotations

import numpy as np


def uncertainty(probs: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row measures: least confidence 1−max p, margin p₁−p₂ (small = unsure), entropy in nats."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.shape[1] >= 2:
        top2 = -np.partition(-probs, 1, axis=1)[:, :2]
    else:
        top2 = np.concatenate([probs, np.zeros_like(probs)], axis=1)
    safe = np.clip(probs, 1e-12, 1.0)
    return {
        "least_confidence": 1.0 - top2[:, 0],
        "margin": top2[:, 0] - top2[:, 1],
        "entropy": -(probs * np.log(safe)).sum(axis=1),
    }


def uncertainty_rank_key(measure: str, values: np.ndarray) -> np.ndarray:
    """A key where larger means more uncertain, whatever the measure's own direction."""
    return -values if measure == "margin" else values
