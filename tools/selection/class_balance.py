"""Class-balance-aware selection: each predicted class gets its quota of the batch.

On an imbalanced pool, uncertainty sampling keeps drawing from the classes the model already
confuses most and rarely shows it the small ones. Here the batch is split into quotas by target
shares (spec.selection.class_targets, every label named; none given: equal shares), rounded by
largest remainders; each label's quota is filled with the candidates predicted as that label
with the smallest margin (most uncertain first), and a quota its predicted candidates cannot
fill goes to the most uncertain candidates overall. Predicted classes stand in for the unknown
true ones, so the batch's true mix follows the targets only as well as the model predicts.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from alloop.tools.errors import InputError
from alloop.tools.model.uncertainty import class_uncertainty
from alloop.tools.selection.base import Picked, SelectionProblem
from alloop.tools.selection.duplicates import take_distinct

CLASS_TASKS = (None, "binary", "categorical", "forced_choice", "ordinal_scale")


def target_shares(labels: list[str], targets: dict[str, float] | None) -> np.ndarray:
    """Shares per label (summing to 1), from the spec's targets or equal."""
    if not targets:
        return np.full(len(labels), 1.0 / len(labels))
    unknown = sorted(set(targets) - set(labels))
    missing = [label for label in labels if label not in targets]
    if unknown or missing:
        raise InputError(
            "selection.class_targets must give a share for every label and no others"
            + (f"; not labels: {unknown}" if unknown else "")
            + (f"; missing: {missing} (give 0 to leave a label out)" if missing else "")
        )
    shares = np.asarray([float(targets[label]) for label in labels])
    if (shares < 0).any() or not shares.sum() > 0:
        raise InputError(f"selection.class_targets must be shares ≥ 0 with a positive sum, got {targets}")
    return shares / shares.sum()


def quotas(shares: np.ndarray, n: int) -> np.ndarray:
    """n split by shares, rounded by largest remainders (Hamilton); ties go to the earlier label."""
    exact = shares * n
    out = np.floor(exact).astype(np.int64)
    left = n - int(out.sum())
    out[np.lexsort((np.arange(len(shares)), -(exact - out)))[:left]] += 1
    return out


class ClassBalance:
    name: ClassVar[str] = "class_balance"
    requires: ClassVar[frozenset[str]] = frozenset({"probs"})

    def select(self, problem: SelectionProblem) -> list[Picked]:
        task_type = problem.options.get("task_type")
        if task_type not in CLASS_TASKS:
            raise InputError(
                f"class_balance fills quotas of predicted classes; a {task_type} run has no single predicted "
                "class per item: use margin, entropy or badge"
            )
        probs = np.asarray(problem.probs, dtype=np.float64)
        labels = problem.labels or [str(c) for c in range(probs.shape[1])]
        if len(labels) != probs.shape[1]:
            raise InputError(f"class_balance: {len(labels)} labels but probabilities over {probs.shape[1]} classes")
        shares = target_shares(labels, problem.options.get("class_targets"))
        quota = quotas(shares, problem.n)
        predicted = probs.argmax(axis=1)
        margin = class_uncertainty(probs)["margin"]
        key = margin + problem.rng.random(len(margin)) * 1e-9  # ties broken at random, seeded
        picks: list[Picked] = []
        skipped = 0

        def take(order: np.ndarray, n: int) -> tuple[list[int], dict[int, int]]:
            """The first n distinct positions of `order`, and each one's rank in it."""
            nonlocal skipped
            reference = problem.reference
            if picks and problem.embeddings is not None:
                chosen = problem.embeddings[[x.position for x in picks]]
                reference = chosen if reference is None or not len(reference) else np.concatenate([reference, chosen])
            got, passed = take_distinct(order, problem.embeddings, reference, n, problem.duplicate_threshold)
            skipped += passed
            return got, {int(p): rank for rank, p in enumerate(order[: len(got) + passed], 1)}

        filled = np.zeros(len(labels), dtype=np.int64)
        for c in np.flatnonzero(quota):
            members = np.flatnonzero(predicted == c)
            got, rank = take(members[np.argsort(key[members], kind="stable")], int(quota[c]))
            filled[c] = len(got)
            picks += [
                Picked(
                    p,
                    f"class_balance: predicted {labels[c]!r}, quota {quota[c]} of {problem.n} (share "
                    f"{shares[c]:.2f}); margin {margin[p]:.3f}, rank {rank[p]} of {len(members)} predicted so",
                )
                for p in got
            ]
        if len(picks) < problem.n:
            taken = np.zeros(len(key), dtype=bool)
            taken[[x.position for x in picks]] = True
            rest = np.flatnonzero(~taken)
            got, _ = take(rest[np.argsort(key[rest], kind="stable")], problem.n - len(picks))
            short = ", ".join(f"{labels[c]!r} {quota[c] - filled[c]}" for c in np.flatnonzero(quota > filled))
            picks += [
                Picked(
                    p,
                    f"class_balance fill: margin {margin[p]:.3f}, predicted {labels[predicted[p]]!r}; too few "
                    f"candidates predicted {short}",
                )
                for p in got
            ]
        problem.report["duplicates_skipped"] = skipped
        return picks
