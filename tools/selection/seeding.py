"""Seed strategies (round 0): the selection interface, for a run with no model yet.

Each picks `problem.n` candidates from `problem.embeddings` (unit vectors of the unlabeled
candidates, already freed of near-duplicates of labeled and held-out items) and says why.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alloop.tools.errors import InputError
from alloop.tools.selection.base import Picked, SelectionProblem
from alloop.tools.selection.duplicates import take_distinct
from alloop.tools.selection.typiclust import KMEANS_SAMPLE, typiclust_picks


def _balanced(groups: dict[str, np.ndarray], rng: np.random.Generator) -> list[tuple[int, str]]:
    """Every member of every group, round-robin over the groups so no class dominates the head."""
    pools = {g: list(rng.permutation(members)) for g, members in groups.items() if len(members)}
    order: list[tuple[int, str]] = []
    while any(pools.values()):
        for group, members in pools.items():
            if members:
                order.append((int(members.pop()), group))
    return order


def _distinct(order: list[tuple[int, str]], problem: SelectionProblem) -> list[tuple[int, str]]:
    """The first n picks of a balanced order that are not near-duplicates of each other."""
    group = dict(order)
    positions = np.asarray([p for p, _ in order], dtype=np.int64)
    chosen, _ = take_distinct(positions, problem.embeddings, None, problem.n, problem.duplicate_threshold)
    return [(p, group[p]) for p in chosen]


class RandomSeed:
    name: ClassVar[str] = "random"
    requires: ClassVar[frozenset[str]] = frozenset({"embeddings"})
    gathers_rows: ClassVar[bool] = True
    """Reads only the rows it draws: `embeddings` may be a lazy row view (candidates.Rows)."""

    def select(self, problem: SelectionProblem) -> list[Picked]:
        order = problem.rng.permutation(len(problem.embeddings))
        chosen, _ = take_distinct(order, problem.embeddings, None, problem.n, problem.duplicate_threshold)
        return [Picked(p, "random draw") for p in chosen]


def _kmeans(problem: SelectionProblem) -> tuple[Any, np.ndarray]:
    """k-means with n clusters on the candidates (on a seeded sample for large pools), and the sample."""
    from sklearn.cluster import KMeans

    x, seed = problem.embeddings, int(problem.options.get("seed", 0))
    sample = np.random.default_rng(seed).choice(len(x), size=min(len(x), KMEANS_SAMPLE), replace=False)
    return KMeans(n_clusters=problem.n, n_init=3, random_state=seed).fit(x[sample]), sample


class DiverseSeed:
    """The item nearest each of n k-means centroids (k-means on a sample for large pools)."""

    name: ClassVar[str] = "diverse"
    requires: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    def select(self, problem: SelectionProblem) -> list[Picked]:
        x, n = problem.embeddings, problem.n
        km, sample = _kmeans(problem)
        order = np.argsort(-(x @ km.cluster_centers_.T), axis=0)  # unit vectors: larger is nearer
        chosen: list[int] = []
        for c in range(n):
            chosen.append(next(int(i) for i in order[:, c] if int(i) not in chosen))
        sizes = np.bincount(km.labels_, minlength=n)
        return [
            Picked(p, f"diverse: nearest item to cluster {c} ({sizes[c]} of {len(sample)} sampled items)")
            for c, p in enumerate(chosen)
        ]


class TypicalSeed:
    """TypiClust (Hacohen et al. 2022) with nothing labeled: the most typical item of each of n clusters.

    A seed item stands for a dense region rather than an outlier that happens to sit near a
    centroid (`typiclust.typicality`). Clusters are ranked largest first.
    """

    name: ClassVar[str] = "typical"
    requires: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    def select(self, problem: SelectionProblem) -> list[Picked]:
        seed = int(problem.options.get("seed", 0))
        picks = typiclust_picks(problem.embeddings, None, problem.n, seed, problem.duplicate_threshold)
        return [Picked(p, f"typical: densest item of cluster {c} ({size} items)") for p, c, size, _ in picks]


def _provisional_classes(problem: SelectionProblem) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Candidates per guessed class, and how each class was guessed.

    With known labels of two or more classes, a candidate goes to its nearest labeled centroid;
    a class without a known label yet is guessed from its name (nearest label name), so the
    classes a seed most needs are not left out.
    """
    if len(problem.labels) < 2:
        raise InputError("a stratified seed needs a label schema of two or more classes; use 'typical'")
    known = np.asarray(problem.known_labels or [], dtype=object)
    seen = [c for c in problem.labels if c in set(known.tolist())]
    groups: dict[str, np.ndarray] = {}
    how: dict[str, str] = {}
    if len(seen) >= 2:
        centroids = np.stack([problem.known_vectors[known == c].mean(0) for c in seen])
        nearest = (problem.embeddings @ centroids.T).argmax(axis=1)
        groups |= {c: np.flatnonzero(nearest == k) for k, c in enumerate(seen)}
        how |= dict.fromkeys(seen, "nearest labeled centroid")
    unseen = [c for c in problem.labels if c not in groups]
    if unseen and problem.label_vectors is not None:
        by_name = (problem.embeddings @ problem.label_vectors.T).argmax(axis=1)
        groups |= {c: np.flatnonzero(by_name == problem.labels.index(c)) for c in unseen}
        how |= dict.fromkeys(unseen, "nearest label name")
    return groups, how


def _equal_shares(sizes: dict[str, int], n: int) -> dict[str, int]:
    """n split as evenly as the group sizes allow; what a small group cannot take goes to the others."""
    shares = dict.fromkeys(sizes, 0)
    left = n
    while left > 0:
        open_groups = [g for g in sizes if shares[g] < sizes[g]]
        if not open_groups:
            break
        for g in sorted(open_groups, key=lambda g: -sizes[g])[:left]:
            shares[g] += 1
            left -= 1
    return shares


class StratifiedSeed:
    """Typical items (TypiClust) within each provisional class, an equal share per class.

    Classes are guessed from the labels known so far (nearest labeled centroid) when two or more
    classes are known, and from the label names embedded by the same encoder (zero-shot) for
    classes without a known label: a guess, but one that gives a class its share of the seed
    where a cluster seed follows the pool's majority.
    """

    name: ClassVar[str] = "stratified"
    requires: ClassVar[frozenset[str]] = frozenset({"embeddings", "label_vectors"})

    def select(self, problem: SelectionProblem) -> list[Picked]:
        groups, how = _provisional_classes(problem)
        shares = _equal_shares({c: len(m) for c, m in groups.items()}, problem.n)
        seed = int(problem.options.get("seed", 0))
        picks: list[Picked] = []
        for c, share in shares.items():
            inside = groups[c]
            taken = problem.embeddings[[q.position for q in picks]] if picks else None
            for p, cluster, size, _ in typiclust_picks(
                problem.embeddings[inside], None, share, seed, problem.duplicate_threshold, taken
            ):
                if int(inside[p]) not in {q.position for q in picks}:  # a class guessed twice (centroid, name)
                    reason = f"stratified: typical item of cluster {cluster} ({size} items) of class {c!r} ({how[c]})"
                    picks.append(Picked(int(inside[p]), reason))
        if len(picks) < problem.n:  # near-duplicates or overlapping guesses left a shortfall: typical items fill it
            taken = problem.embeddings[[q.position for q in picks]] if picks else None
            fill = typiclust_picks(
                problem.embeddings, None, problem.n - len(picks), seed, problem.duplicate_threshold, taken
            )
            picks += [Picked(p, f"stratified: typical fill, cluster {c} ({size} items)") for p, c, size, _ in fill]
        return picks


class KeywordSeed:
    """Items matching each class's keywords, balanced; a distinct random fill when too few match."""

    name: ClassVar[str] = "keyword"
    requires: ClassVar[frozenset[str]] = frozenset({"embeddings", "texts", "keywords"})
    gathers_rows: ClassVar[bool] = True

    def select(self, problem: SelectionProblem) -> list[Picked]:
        unknown = [label for label in problem.keywords if label not in problem.labels]
        if unknown:
            raise InputError(f"keywords given for {unknown}, which are not in the label schema {problem.labels}")
        column = pa.array(problem.texts, pa.string())
        groups = {}
        for label, words in problem.keywords.items():
            if words:
                pattern = r"(?i)\b(" + "|".join(re.escape(w) for w in words) + r")\b"
                matches = pc.match_substring_regex(column, pattern).to_numpy(zero_copy_only=False)
                groups[label] = np.flatnonzero(matches)
        problem.report["keywords_without_match"] = [g for g in problem.keywords if not len(groups.get(g, []))]
        picks = [(p, f"keyword match for {g!r}") for p, g in _distinct(_balanced(groups, problem.rng), problem)]
        if len(picks) < problem.n:
            taken = {p for p, _ in picks}
            order = np.asarray([i for i in problem.rng.permutation(len(problem.texts)) if int(i) not in taken])
            fill, _ = take_distinct(
                order,
                problem.embeddings,
                problem.embeddings[sorted(taken)],
                problem.n - len(picks),
                problem.duplicate_threshold,
            )
            picks += [(p, "random fill (keywords matched too few items)") for p in fill]
        return [Picked(p, reason) for p, reason in picks]


SEED_STRATEGIES: dict[str, type] = {
    cls.name: cls for cls in (RandomSeed, DiverseSeed, TypicalSeed, StratifiedSeed, KeywordSeed)
}
