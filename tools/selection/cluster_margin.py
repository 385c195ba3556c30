"""Cluster-margin (Citovsky et al. 2021, NeurIPS): uncertain items, spread over their clusters.

For large batches, the lowest-margin items crowd into a few confused regions. Cluster-margin
takes the `factor × n` lowest-margin candidates (`hybrid_factor`, 10 by default), clusters them
by average-linkage HAC on cosine distance (scipy), and fills the batch round-robin over the
clusters, smallest first, a random member each turn. The paper clusters the whole pool once;
here only the shortlist is clustered (at most `SHORTLIST_MAX` items, since average linkage holds
all pairwise distances), cut into n clusters, so a batch takes one item per cluster unless
near-duplicates exhaust some.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from alloop.tools.selection.base import Picked, SelectionProblem
from alloop.tools.selection.duplicates import max_similarity, take_distinct
from alloop.tools.selection.uncertainty import class_margins, top_k_order

SHORTLIST_MAX = 5000


def hac_clusters(vectors: np.ndarray, k: int) -> np.ndarray:
    """Cluster index (0..) of each row: average-linkage HAC on cosine distance, cut into ≤ k clusters."""
    if len(vectors) <= 1 or k <= 1:
        return np.zeros(len(vectors), dtype=np.int64)
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(np.asarray(vectors, dtype=np.float64), method="average", metric="cosine")
    return fcluster(tree, t=min(k, len(vectors)), criterion="maxclust").astype(np.int64) - 1


def round_robin(
    clusters: np.ndarray, n: int, rng: np.random.Generator, allowed: np.ndarray, vectors: np.ndarray, threshold: float
) -> list[tuple[int, int, int]]:
    """(position, cluster, turn) for up to n picks: clusters smallest first, a random allowed member each.

    A pick masks its near-duplicates (cosine ≥ threshold) among the rest.
    """
    sizes = np.bincount(clusters)
    order = [int(c) for c in np.lexsort((np.arange(len(sizes)), sizes)) if sizes[c]]
    queues = {c: list(rng.permutation(np.flatnonzero(clusters == c))) for c in order}
    allowed = allowed.copy()
    picks: list[tuple[int, int, int]] = []
    turn = 0
    while len(picks) < n and any(queues.values()):
        turn += 1
        for c in order:
            queue = queues[c]
            while queue and not allowed[queue[0]]:
                queue.pop(0)
            if not queue or len(picks) == n:
                continue
            best = int(queue.pop(0))
            picks.append((best, c, turn))
            allowed[best] = False
            allowed &= vectors @ vectors[best] < threshold
    return picks


class ClusterMargin:
    name: ClassVar[str] = "cluster_margin"
    requires: ClassVar[frozenset[str]] = frozenset({"probs", "embeddings"})

    def select(self, problem: SelectionProblem) -> list[Picked]:
        margin = class_margins(problem, self.name, "entropy or kcenter")
        factor = int(problem.options.get("hybrid_factor", 10))
        size = min(len(margin), max(problem.n, min(factor * problem.n, SHORTLIST_MAX)))
        shortlist = top_k_order(-margin + problem.rng.random(len(margin)) * 1e-9, size)
        vectors = problem.embeddings[shortlist]
        clusters = hac_clusters(vectors, problem.n)
        sizes = np.bincount(clusters)
        allowed = max_similarity(vectors, problem.reference) < problem.duplicate_threshold
        picks = round_robin(clusters, problem.n, problem.rng, allowed, vectors, problem.duplicate_threshold)
        out = [
            Picked(
                int(shortlist[p]),
                f"cluster_margin: margin {margin[shortlist[p]]:.3f} (among the {size} lowest), cluster {c} of "
                f"{len(sizes)} (size {sizes[c]}, smallest first), turn {turn}",
            )
            for p, c, turn in picks
        ]
        problem.report["duplicates_skipped"] = int((~allowed).sum())
        if len(out) < problem.n:  # near-duplicates emptied the shortlist: the next lowest margins fill up
            taken = np.asarray([x.position for x in out], dtype=np.int64)
            rest = np.setdiff1d(np.argsort(margin, kind="stable"), shortlist, assume_unique=True)
            rest = rest[np.argsort(margin[rest], kind="stable")]
            reference = problem.embeddings[taken]
            if problem.reference is not None and len(problem.reference):
                reference = np.concatenate([problem.reference, reference])
            fill, _ = take_distinct(
                rest, problem.embeddings, reference, problem.n - len(out), problem.duplicate_threshold
            )
            out += [Picked(p, f"cluster_margin fill: margin {margin[p]:.3f} (the shortlist ran out)") for p in fill]
        return out
