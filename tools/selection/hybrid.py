"""Hybrid: take the most uncertain candidates, then diversify among them with k-center greedy."""

from __future__ import annotations

from typing import ClassVar

from alloop.tools.model.uncertainty import measure_for, uncertainty
from alloop.tools.selection.base import Picked, SelectionProblem
from alloop.tools.selection.coreset import k_center_greedy
from alloop.tools.selection.uncertainty import top_k_order


class UncertainThenDiverse:
    """Entropy top `factor × n`, then k-center within them (ranked by coverage gain)."""

    name: ClassVar[str] = "hybrid"
    requires: ClassVar[frozenset[str]] = frozenset({"probs", "embeddings"})

    def select(self, problem: SelectionProblem) -> list[Picked]:
        factor = int(problem.options.get("hybrid_factor", 10))
        task_type = problem.options.get("task_type")
        measure = measure_for("entropy", task_type)
        entropy = uncertainty(problem.probs, task_type)[measure]
        key = entropy + problem.rng.random(len(entropy)) * 1e-9
        shortlist = top_k_order(key, min(len(key), factor * problem.n))
        picked, distances = k_center_greedy(
            problem.embeddings[shortlist],
            problem.covered,
            problem.n,
            problem.duplicate_threshold,
            problem.rng,
            problem.reference,
        )
        return [
            Picked(
                int(shortlist[p]),
                f"{measure} {entropy[shortlist[p]]:.3f} (among top {len(shortlist)} uncertain); "
                + ("first pick" if d != d else f"cosine distance {d:.3f} from covered set"),
            )
            for p, d in zip(picked, distances, strict=True)
        ]
