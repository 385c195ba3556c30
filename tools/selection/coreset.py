"""k-center greedy (coreset): each pick is the candidate farthest from everything covered so far.

Exact, and lazy where it can be: distances to the covered set only shrink as picks are added, so
a stale distance is an upper bound. The greedy keeps the `ACTIVE` farthest candidates exact (one
small matrix–vector product per pick) and takes the farthest of them while it beats every stale
bound outside; only when it does not are the picks since the last pass folded into all candidates
at once (one chunked matrix–matrix product, compute-bound rather than one memory pass per pick).
The same picks as the plain one-pass-per-pick greedy; 1,000 of 1,000,000 takes seconds, not minutes.
Near-duplicates of the reference set (held-out items) are checked only for the items about to be picked.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from alloop.tools.selection.base import Picked, SelectionProblem
from alloop.tools.selection.duplicates import max_similarity

ACTIVE = 8192
"""Candidates kept exact between full passes; doubled after each pass."""


def k_center_greedy(
    embeddings: np.ndarray,
    covered: np.ndarray | None,
    n: int,
    duplicate_threshold: float,
    rng: np.random.Generator,
    reference: np.ndarray | None = None,
) -> tuple[list[int], list[float]]:
    """Positions picked and each one's cosine distance to the covered set when picked.

    Coverage starts from `covered`; candidates that duplicate `reference` (a superset of the
    covered items, e.g. with the held-out set) are never picked but do not count as covered.
    `embeddings` may be a candidate view (candidates.Rows): it is read in chunks, never copied whole.
    """
    size = len(embeddings)
    limit = 1.0 - duplicate_threshold
    has_covered = covered is not None and len(covered) > 0
    has_reference = reference is not None and len(reference) > 0
    if n <= 0 or size == 0:
        return [], []
    bound = 1.0 - max_similarity(embeddings, covered) if has_covered else np.full(size, 2.0, dtype=np.float32)
    bound[bound <= limit] = -1.0  # duplicates of the covered set are never picked
    picked: list[int] = []
    distances: list[float] = []
    centers = np.empty((n, embeddings.shape[1]), dtype=np.float32)
    if not has_covered:  # nothing labeled yet: a random start among the non-duplicates
        if has_reference:
            bound[max_similarity(embeddings, reference) >= duplicate_threshold] = -1.0
        allowed = np.flatnonzero(bound >= 0)
        if not len(allowed):
            return [], []
        first = int(allowed[rng.integers(len(allowed))])
        picked.append(first)
        distances.append(float("nan"))
        centers[0] = embeddings[first]
        has_reference = False  # already masked for every candidate
    with threadpool_limits(1, user_api="blas"):  # the per-pick products are small: more BLAS threads only spin
        folded = 0  # picks already folded into every bound
        active, active_x, active_val, outside = _activate(embeddings, bound, min(size, ACTIVE))
        active_val = _fold(active_val, active_x, centers[folded : len(picked)], limit)
        while len(picked) < n:
            local = int(np.argmax(active_val))
            if active_val[local] > outside:
                best, value = int(active[local]), float(active_val[local])
            else:  # the exact set no longer beats the stale bounds: fold the recent picks into every candidate
                for start in range(0, size, 65536):
                    part = slice(start, start + 65536)
                    bound[part] = _fold(bound[part], embeddings[part], centers[folded : len(picked)], limit)
                folded = len(picked)
                best = int(np.argmax(bound))
                value = float(bound[best])
                active, active_x, active_val, outside = _activate(embeddings, bound, min(size, 2 * len(active)))
                local = min(int(np.searchsorted(active, best)), len(active) - 1)
            if value < 0:
                break  # everything left is a duplicate
            exact = active[local] == best  # False only if more rows tie at the top than the exact set holds
            vector = active_x[local] if exact else np.asarray(embeddings[best], dtype=np.float32)
            if has_reference and float((reference @ vector).max()) >= duplicate_threshold:
                bound[best] = -1.0  # a held-out item's twin: never picked, not covered
                if exact:
                    active_val[local] = -1.0
                continue
            picked.append(best)
            distances.append(value)
            centers[len(picked) - 1] = vector
            active_val = _fold(active_val, active_x, vector[None, :], limit)
    return picked, distances


def _fold(values: np.ndarray, rows: np.ndarray, centers: np.ndarray, limit: float) -> np.ndarray:
    """`values` lowered to each row's cosine distance to `centers` where that is smaller; duplicates → −1."""
    if not len(centers):
        return values
    values = np.minimum(values, 1.0 - (rows @ centers.T).max(axis=1))
    values[values <= limit] = -1.0
    return values


def _activate(embeddings: np.ndarray, bound: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The `size` largest bounds (positions ascending, so ties go to the lowest position as argmax does),
    their vectors and values, and the largest bound left outside (−inf when none is)."""
    if size >= len(bound):
        active = np.arange(len(bound))
        outside = -np.inf
    else:
        order = np.argpartition(bound, len(bound) - size)
        active = np.sort(order[len(bound) - size :])
        outside = float(bound[order[: len(bound) - size]].max())
    return active, np.asarray(embeddings[active], dtype=np.float32), bound[active].copy(), outside


class KCenterGreedy:
    name: ClassVar[str] = "kcenter"
    requires: ClassVar[frozenset[str]] = frozenset({"embeddings"})
    gathers_rows: ClassVar[bool] = True

    def select(self, problem: SelectionProblem) -> list[Picked]:
        picked, distances = k_center_greedy(
            problem.embeddings, problem.covered, problem.n, problem.duplicate_threshold, problem.rng, problem.reference
        )
        return [
            Picked(
                p,
                "k-center start (nothing labeled yet)"
                if np.isnan(d)
                else f"farthest from covered set: cosine distance {d:.3f}",
            )
            for p, d in zip(picked, distances, strict=True)
        ]
