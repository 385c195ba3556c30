"""BALD (Houlsby et al. 2011; Gal et al. 2017): items the head's plausible weights disagree on.

Mutual information between an item's label and the weights, estimated from T weight draws of
the head's Laplace posterior (laplace.py):

  I[y; θ | x] = H[mean_t p_t(y|x)] − mean_t H[p_t(y|x)].

High where the draws are each confident but disagree (epistemic), unlike entropy, which is also
high where every draw is unsure (aleatoric: a label more data will not settle). The head's
posterior is over frozen features: with a fine-tuned encoder BALD would need MC dropout through
the encoder, which is not built; select_batch refuses that case.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import numpy as np

from alloop.tools.selection.base import Picked, SelectionProblem
from alloop.tools.selection.duplicates import take_distinct
from alloop.tools.selection.uncertainty import top_k_order

DRAWS = 32


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-300, 1.0))).sum(axis=1)


def bald_terms(draws: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mutual information, entropy of the mean, mean entropy) per row, in nats, over the draws.

    The draws (each n × k) are read one at a time, so memory stays at two n × k arrays.
    """
    total, entropy_sum, count = None, None, 0
    for p in draws:
        p = np.asarray(p, dtype=np.float64)
        total = p.copy() if total is None else total + p
        entropy_sum = _entropy(p) if entropy_sum is None else entropy_sum + _entropy(p)
        count += 1
    if not count:
        raise ValueError("bald_terms needs at least one draw")
    predictive = _entropy(total / count)
    expected = entropy_sum / count
    return np.clip(predictive - expected, 0.0, None), predictive, expected


class Bald:
    name: ClassVar[str] = "bald"
    requires: ClassVar[frozenset[str]] = frozenset({"posterior", "embeddings"})

    def select(self, problem: SelectionProblem) -> list[Picked]:
        posterior = problem.posterior
        draws = posterior.probability_draws(problem.embeddings, DRAWS, problem.rng, problem.options.get("design"))
        mi, predictive, expected = bald_terms(draws)
        key = mi + problem.rng.random(len(mi)) * 1e-12  # ties broken at random, seeded
        order = top_k_order(key, min(len(key), max(8 * problem.n, 256)))
        chosen, skipped = take_distinct(
            order, problem.embeddings, problem.reference, problem.n, problem.duplicate_threshold
        )
        if len(chosen) < problem.n:  # the head of the ranking was all duplicates
            order = np.argsort(-key, kind="stable")
            chosen, skipped = take_distinct(
                order, problem.embeddings, problem.reference, problem.n, problem.duplicate_threshold
            )
        problem.report["duplicates_skipped"] = skipped
        rank_of = {int(p): rank for rank, p in enumerate(order[: len(chosen) + skipped], 1)}
        return [
            Picked(
                p,
                f"bald: mutual information {mi[p]:.4f} = predictive entropy {predictive[p]:.3f} − expected "
                f"entropy {expected[p]:.3f} ({DRAWS} draws, {posterior.kind} Laplace), rank {rank_of[p]} of "
                f"{len(mi)} unlabeled",
            )
            for p in chosen
        ]
