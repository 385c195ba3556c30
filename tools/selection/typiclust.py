"""TypiClust (Hacohen, Dekel & Weinshall 2022, ICML): typical items of uncovered clusters.

At small budgets, what a model learns from depends more on covering the dense regions of the
pool than on its own (poorly calibrated) uncertainty. Each round, k-means with |labeled| + n
clusters (at most `MAX_CLUSTERS`) over the pool; each pick comes from the cluster with the
fewest labeled items (the largest among ties) and is its most typical unlabeled member:
typicality is the inverse mean cosine distance to the item's nearest neighbours in its cluster.
The seed strategy `typical` is the same rule with nothing labeled yet.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from alloop.tools.selection.base import Picked, SelectionProblem
from alloop.tools.selection.duplicates import max_similarity

KMEANS_SAMPLE = 10000
KMEANS_ITERATIONS = 50
MAX_CLUSTERS = 500
MIN_CLUSTER_SIZE = 5
TYPICALITY_NEIGHBOURS = 20
TYPICALITY_SAMPLE = 2000


def typicality(vectors: np.ndarray) -> np.ndarray:
    """1 / mean cosine distance to each row's `TYPICALITY_NEIGHBOURS` nearest other rows."""
    k = min(TYPICALITY_NEIGHBOURS, len(vectors) - 1)
    if k < 1:
        return np.ones(len(vectors))
    sims = vectors @ vectors.T
    nearest = -np.sort(-sims, axis=1)[:, 1 : k + 1]
    return 1.0 / (1e-6 + (1.0 - nearest).mean(axis=1))


def kmeans_clusters(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cluster of every row: k-means fitted on a seeded sample, then every row assigned.

    Plain D² seeding (one local trial) and at most `KMEANS_ITERATIONS` Lloyd steps: with
    hundreds of clusters, scikit-learn's default k-means++ (2 + log k trials per centre, 3 runs)
    took 180 s on a 100,000-item pool; this takes about 2 s.
    """
    from sklearn.cluster import KMeans, kmeans_plusplus

    sample = x[np.random.default_rng(seed).choice(len(x), size=min(len(x), KMEANS_SAMPLE), replace=False)]
    centres, _ = kmeans_plusplus(sample, k, random_state=seed, n_local_trials=1)
    km = KMeans(n_clusters=k, init=centres, n_init=1, max_iter=KMEANS_ITERATIONS, random_state=seed).fit(sample)
    return km.predict(x)


def typiclust_picks(
    candidates: np.ndarray,
    covered: np.ndarray | None,
    n: int,
    seed: int,
    duplicate_threshold: float = 1.0,
    reference: np.ndarray | None = None,
) -> list[tuple[int, int, int, int]]:
    """(position, cluster, cluster size, labeled in cluster before the pick) for up to n picks."""
    if n < 1 or not len(candidates):
        return []
    covered = covered if covered is not None else np.empty((0, candidates.shape[1]), candidates.dtype)
    x = np.concatenate([candidates, covered]) if len(covered) else candidates
    k = max(1, min(len(covered) + n, MAX_CLUSTERS, len(x)))
    cluster = kmeans_clusters(x, k, seed)
    of_candidate, of_covered = cluster[: len(candidates)], cluster[len(candidates) :]
    sizes = np.bincount(cluster, minlength=k)
    labeled = np.bincount(of_covered, minlength=k).astype(float)
    allowed = np.ones(len(candidates), dtype=bool)
    if reference is not None and len(reference):
        allowed &= max_similarity(candidates, reference) < duplicate_threshold
    rng = np.random.default_rng(seed)
    small = sizes < MIN_CLUSTER_SIZE if (sizes >= MIN_CLUSTER_SIZE).sum() >= n else np.zeros(k, bool)
    picks: list[tuple[int, int, int, int]] = []
    exhausted = np.zeros(k, dtype=bool)
    while len(picks) < n:
        # clusters with candidates left; among them not small (outliers), fewest labeled, largest
        c = int(np.lexsort((-sizes, labeled, small, exhausted))[0])
        if exhausted[c]:
            break  # every cluster is exhausted
        members = np.flatnonzero((of_candidate == c) & allowed)
        if not len(members):
            exhausted[c] = True
            continue
        if len(members) > TYPICALITY_SAMPLE:  # the densest region shows in a sample; keeps memory bounded
            members = np.sort(rng.choice(members, TYPICALITY_SAMPLE, replace=False))
        best = int(members[np.argmax(typicality(candidates[members]))])
        picks.append((best, c, int(sizes[c]), int(labeled[c])))
        labeled[c] += 1
        allowed[best] = False
        allowed &= candidates @ candidates[best] < duplicate_threshold
    return picks


class TypiClust:
    name: ClassVar[str] = "typiclust"
    requires: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    def select(self, problem: SelectionProblem) -> list[Picked]:
        seed = int(problem.rng.integers(2**31))
        picks = typiclust_picks(
            problem.embeddings, problem.covered, problem.n, seed, problem.duplicate_threshold, problem.reference
        )
        return [
            Picked(p, f"typiclust: most typical item of cluster {c} ({size} items, {done} labeled)")
            for p, c, size, done in picks
        ]
