"""Random and uncertainty sampling: rank the pool by one measure, take the top distinct items."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from alloop.tools.errors import InputError
from alloop.tools.model.uncertainty import measure_for, uncertainty, uncertainty_rank_key
from alloop.tools.selection.base import Picked, SelectionProblem
from alloop.tools.selection.duplicates import take_distinct


def top_k_order(key: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest keys, largest first, without sorting the whole pool."""
    k = min(k, len(key))
    head = np.argpartition(-key, k - 1)[:k] if k < len(key) else np.arange(len(key))
    return head[np.argsort(-key[head], kind="stable")]


class RandomSampling:
    name: ClassVar[str] = "random"
    requires: ClassVar[frozenset[str]] = frozenset()
    gathers_rows: ClassVar[bool] = True
    """Reads `problem.embeddings` by index only, so a lazy candidate view (candidates.Rows) will do."""

    def select(self, problem: SelectionProblem) -> list[Picked]:
        size = len(problem.embeddings) if problem.embeddings is not None else len(problem.probs)
        order = problem.rng.permutation(size)
        chosen, skipped = take_distinct(
            order, problem.embeddings, problem.reference, problem.n, problem.duplicate_threshold
        )
        problem.report["duplicates_skipped"] = skipped
        return [Picked(p, f"random draw {rank} of {size} unlabeled") for rank, p in enumerate(chosen, 1)]


def class_margins(problem: SelectionProblem, strategy: str, instead: str) -> np.ndarray:
    """The candidates' class margins, or why a margin strategy cannot run (a magnitude has no classes)."""
    measures = uncertainty(problem.probs, problem.options.get("task_type"))
    if "margin" not in measures:
        raise InputError(f"{strategy} ranks by class margins; a magnitude run has none: use {instead}")
    return measures["margin"]


class UncertaintySampling:
    """Highest least-confidence, smallest margin or highest entropy first."""

    requires: ClassVar[frozenset[str]] = frozenset({"probs"})
    gathers_rows: ClassVar[bool] = True
    measure: ClassVar[str]

    def select(self, problem: SelectionProblem) -> list[Picked]:
        task_type = problem.options.get("task_type")
        measure = measure_for(self.measure, task_type)  # ordinal: variance; magnitude: sd; multi_select: Σ entropy
        values = uncertainty(problem.probs, task_type)[measure]
        key = uncertainty_rank_key(measure, values)
        # Ties (common with few labels) are broken at random, seeded, not by pool order.
        key = key + problem.rng.random(len(key)) * 1e-9
        order = top_k_order(key, min(len(key), max(8 * problem.n, 256)))
        chosen, skipped = take_distinct(
            order, problem.embeddings, problem.reference, problem.n, problem.duplicate_threshold
        )
        if len(chosen) < problem.n:  # the head was all duplicates: fall back to the full ranking
            order = np.argsort(-key, kind="stable")
            chosen, skipped = take_distinct(
                order, problem.embeddings, problem.reference, problem.n, problem.duplicate_threshold
            )
        problem.report["duplicates_skipped"] = skipped
        # take_distinct walked exactly the first chosen + skipped entries of the ranking
        rank_of = {int(p): rank for rank, p in enumerate(order[: len(chosen) + skipped], 1)}
        total = len(key)
        return [Picked(p, f"{measure} {values[p]:.3f}, rank {rank_of[p]} of {total} unlabeled") for p in chosen]


class LeastConfidence(UncertaintySampling):
    name: ClassVar[str] = "least_confidence"
    measure: ClassVar[str] = "least_confidence"


class Margin(UncertaintySampling):
    name: ClassVar[str] = "margin"
    measure: ClassVar[str] = "margin"


class Entropy(UncertaintySampling):
    name: ClassVar[str] = "entropy"
    measure: ClassVar[str] = "entropy"


class PowerMargin:
    """Stochastic margin sampling (power acquisition, Kirsch et al. 2023, TMLR).

    Draws the batch with probability ∝ (1 − margin)^β (Gumbel-top-k, β = `power_beta`, 1 by
    default) instead of taking the top of the ranking: the batch still leans to uncertain items
    but is not made only of the most ambiguous ones, which on noisy labels are often noise.
    """

    name: ClassVar[str] = "power_margin"
    requires: ClassVar[frozenset[str]] = frozenset({"probs"})
    gathers_rows: ClassVar[bool] = True

    def select(self, problem: SelectionProblem) -> list[Picked]:
        margin = class_margins(problem, self.name, "entropy (ranks by sd)")
        beta = float(problem.options.get("power_beta", 1.0))
        score = np.clip(1.0 - margin, 1e-12, None)
        key = beta * np.log(score) + problem.rng.gumbel(size=len(score))
        order = np.argsort(-key, kind="stable")
        chosen, skipped = take_distinct(
            order, problem.embeddings, problem.reference, problem.n, problem.duplicate_threshold
        )
        problem.report["duplicates_skipped"] = skipped
        return [Picked(p, f"margin {margin[p]:.3f}, drawn with weight (1 − margin)^{beta:g}") for p in chosen]
