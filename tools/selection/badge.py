"""BADGE (Ash et al. 2020, ICLR): k-means++ seeding over the head's gradient embeddings.

For a softmax head over features x, the gradient of the cross-entropy loss at the predicted
label ŷ with respect to the head's weights is g = (p − onehot(ŷ)) ⊗ x: its norm is large where
the model is unsure (uncertainty) and its direction differs between regions (diversity).
k-means++ seeding over these vectors draws a batch that is both.

Written here rather than taken from small-text, whose BADGE needs its own PyTorch classifier:
the product form lets the squared distance be computed without materializing the C × d vectors,
  ‖gᵢ − gⱼ‖² = ‖aᵢ‖²‖xᵢ‖² + ‖aⱼ‖²‖xⱼ‖² − 2 (aᵢ·aⱼ)(xᵢ·xⱼ),  a = p − onehot(ŷ),
so one pick costs one pass over the candidates (n × (C + d)) whatever the number of classes.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from alloop.tools.selection.base import Picked, SelectionProblem
from alloop.tools.selection.duplicates import max_similarity


def gradient_factors(probs: np.ndarray) -> np.ndarray:
    """a = p − onehot(argmax p): the class part of each candidate's gradient embedding."""
    a = np.asarray(probs, dtype=np.float64).copy()
    a[np.arange(len(a)), a.argmax(axis=1)] -= 1.0
    return a


def gradient_embeddings(probs: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The explicit gradient embeddings (n × C·d); for tests and small pools only."""
    a = gradient_factors(probs)
    return (a[:, :, None] * np.asarray(features, dtype=np.float64)[:, None, :]).reshape(len(a), -1)


def badge_picks(
    probs: np.ndarray,
    features: np.ndarray,
    n: int,
    rng: np.random.Generator,
    duplicate_threshold: float = 1.0,
    reference: np.ndarray | None = None,
) -> tuple[list[int], list[float]]:
    """Positions drawn by k-means++ over the gradient embeddings, and each one's gradient norm.

    The first pick is the largest gradient (as in the paper's code); each next one is drawn with
    probability ∝ its squared distance to the nearest pick. Candidates within cosine
    `duplicate_threshold` of `reference` or of a pick (in feature space) are never drawn.
    """
    a = gradient_factors(probs)
    x = np.asarray(features, dtype=np.float32)
    a_sq = (a * a).sum(axis=1)
    norm_sq = a_sq * (x.astype(np.float64) ** 2).sum(axis=1)
    allowed = np.ones(len(x), dtype=bool)
    if reference is not None and len(reference):
        allowed &= max_similarity(x, reference) < duplicate_threshold
    nearest = np.full(len(x), np.inf)
    picked: list[int] = []
    norms: list[float] = []
    while len(picked) < n and allowed.any():
        if not picked:
            weights = np.where(allowed, norm_sq, -1.0)
            best = int(np.argmax(weights))
        else:
            weights = np.where(allowed, np.clip(nearest, 0.0, None), 0.0)
            total = weights.sum()
            if total <= 0:  # every gradient left coincides with a pick: fall back to uniform
                weights = allowed.astype(np.float64)
                total = weights.sum()
            best = int(rng.choice(len(x), p=weights / total))
        picked.append(best)
        norms.append(float(np.sqrt(norm_sq[best])))
        similarity = x @ x[best]
        allowed[best] = False
        allowed &= similarity < duplicate_threshold
        distance = norm_sq + norm_sq[best] - 2.0 * (a @ a[best]) * similarity
        nearest = np.minimum(nearest, distance)
    return picked, norms


class Badge:
    name: ClassVar[str] = "badge"
    requires: ClassVar[frozenset[str]] = frozenset({"probs", "embeddings"})

    def select(self, problem: SelectionProblem) -> list[Picked]:
        picked, norms = badge_picks(
            problem.probs,
            problem.embeddings,
            problem.n,
            problem.rng,
            problem.duplicate_threshold,
            problem.reference,
        )
        return [
            Picked(
                p,
                f"badge: gradient norm {g:.3f}, "
                + ("largest in the pool" if i == 0 else "drawn ∝ squared gradient distance to the batch"),
            )
            for i, (p, g) in enumerate(zip(picked, norms, strict=True))
        ]
