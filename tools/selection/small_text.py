"""small-text's query strategies that alloop has no own code for, behind the selection interface.

Wrapped (issue 15): LightweightCoreset (Bachem, Lucic & Krause 2018), EmbeddingKMeans (BERT-KM,
Yuan, Lin & Boyd-Graber 2020), ContrastiveActiveLearning (CAL, Margatina et al. 2021) and
DiscriminativeActiveLearning (DAL, Gissin & Shalev-Shwartz 2019). small-text's others are alloop's
own already (RandomSampling, LeastConfidence, BreakingTies = margin, PredictionEntropy,
GreedyCoreset = kcenter, BALD = bald) or cannot be fed from a selection problem:
AnchorSubsampling needs the labeled items' classes, CategoryVectorInconsistencyAndRanking the
labeled items' label sets (multi-label only), and SEALS needs hnswlib (not a dependency) and
rebuilds its neighbour index on every call (`benchmarks/small_text_strategies.py` times it).

Only glue is hand-written here: small-text's `query(clf, dataset, indices_unlabeled,
indices_labeled, y, n)` expects a trained text classifier and a dataset, while alloop has the
vectors and class probabilities already. A dataset stand-in (row indices into those arrays) and a
classifier whose embed()/predict_proba() return the rows stand in for them; which items are picked
is decided by small-text's code alone. small-text draws from numpy's global generator, so each
query seeds it from `problem.rng` and restores it afterwards: the same seed gives the same batch.

Near-duplicates are skipped as the other strategies skip them (duplicates.take_distinct, in
small-text's order); when too few are left, small-text is asked again for twice as many.

Speed (benchmarks/small_text_strategies.py, 100 picked, one thread, two runs on a shared machine):
only LightweightCoreset is well under 2 s on 100,000 candidates as small-text has it (0.2-0.9 s).
The others run on a random subsample drawn with `problem.rng` (recorded in
`problem.report["small_text_subsample"]` and in each reason): EmbeddingKMeans on
`KMEANS_SUBSAMPLE_CAP` (26-34 s on 100,000, 1-1.5 s on 10,000), CAL on `CAL_SUBSAMPLE_CAP`
(3.4-3.9 s on 10,000: a k-nearest-neighbour search and a Python loop per candidate) and DAL on
`DAL_SUBSAMPLE_CAP` (1.4-2.0 s on 100,000, growing with the pool: ten passes over every
candidate; it also trains on at most `DAL_LABELED_CAP` covered items). small-text runs with one
BLAS/OpenMP thread, as kcenter's per-pick products do: its k-means, neighbour search and logistic
fits are small, and with the libraries' default threads they took 4-30 times as long on 10,000
(kmeans 5.3 s, CAL 4.4 s, DAL 9.4 s) on a shared 2-core machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from alloop.tools.errors import InputError
from alloop.tools.selection.base import Picked, SelectionProblem
from alloop.tools.selection.duplicates import take_distinct

KMEANS_SUBSAMPLE_CAP = 10000
"""EmbeddingKMeans fits k-means on at most this many candidates."""
CAL_SUBSAMPLE_CAP = 5000
"""CAL compares every candidate with every other (k nearest neighbours): at most this many."""
CAL_NEIGHBOURS = 10
"""small-text's default k (fewer when there are fewer candidates)."""
DAL_SUBSAMPLE_CAP = 50000
"""DAL scores at most this many candidates after each of its sub-batches."""
DAL_SUB_BATCHES = 10
"""DAL retrains its labeled-vs-unlabeled classifier this often per batch (fewer if n is smaller)."""
DAL_LABELED_CAP = 500
"""DAL trains on at most this many covered items (and 10× as many candidates)."""

_NONE = np.empty(0, dtype=np.int64)
"""No labeled items (or labels) for the strategies that do not read them."""


class _Rows:
    """Stands in for a small-text dataset: positions into precomputed arrays, gathered only when read."""

    def __init__(self, index: np.ndarray) -> None:
        self.index = index

    def __getitem__(self, item: Any) -> _Rows:
        return _Rows(self.index[item])

    def __len__(self) -> int:
        return len(self.index)


class _Precomputed:
    """Stands in for a small-text classifier: embed() and predict_proba() return precomputed rows."""

    def __init__(self, vectors: np.ndarray, probs: np.ndarray | None = None) -> None:
        self.vectors = vectors
        self.probs = probs

    def embed(self, dataset: _Rows, return_proba: bool = False, **_: Any) -> Any:
        x = self.vectors[dataset.index]
        if not return_proba:
            return x
        return x, (self.probs[dataset.index] if self.probs is not None else None)

    def predict_proba(self, dataset: _Rows) -> np.ndarray:
        return self.probs[dataset.index]


def _query_strategies() -> Any:
    try:
        import small_text.query_strategies as query_strategies
    except ImportError as error:
        raise InputError(
            "the small_text_* strategies need small-text: pip install 'alloop[bench]' (small-text==1.4.1)"
        ) from error
    return query_strategies


@contextmanager
def _numpy_global_seed(seed: int) -> Iterator[None]:
    """small-text (and scikit-learn without a random_state) draw from numpy's global generator."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _subsample(problem: SelectionProblem, cap: int | None) -> np.ndarray:
    """Candidate positions small-text sees: all, or a seeded random `cap` of them (ascending)."""
    size = len(problem.embeddings)
    if cap is None or size <= cap:
        return np.arange(size)
    problem.report["small_text_subsample"] = f"{cap} of {size}"
    return np.sort(problem.rng.choice(size, cap, replace=False))


def _rows_of(array: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The rows at `positions`: the array itself when they are all of it (no copy of a large pool)."""
    return array if len(positions) == len(array) else array[positions]


def _query_all_unlabeled(strategy: Any, vectors: np.ndarray, n: int, probs: np.ndarray | None = None, **kw: Any) -> Any:
    """small-text's `query` over these rows, all of them unlabeled: indices into `vectors`."""
    everything = np.arange(len(vectors))
    return strategy.query(_Precomputed(vectors, probs), _Rows(everything), everything, _NONE, _NONE, n=n, **kw)


class SmallTextStrategy:
    """One small-text query strategy: subsample if capped, query, skip near-duplicates, give reasons."""

    name: ClassVar[str]
    requires: ClassVar[frozenset[str]] = frozenset({"embeddings"})
    cap: ClassVar[int | None] = None

    def query(self, problem: SelectionProblem, positions: np.ndarray, ask: int) -> list[tuple[int, str]]:
        """`ask` candidate positions (from `positions`) in small-text's order, each with its criterion."""
        raise NotImplementedError

    def select(self, problem: SelectionProblem) -> list[Picked]:
        positions = _subsample(problem, self.cap)
        seed = int(problem.rng.integers(2**31))
        ask = min(problem.n, len(positions))
        while True:
            with _numpy_global_seed(seed), threadpool_limits(1):  # see the module docstring
                answered = self.query(problem, positions, ask)
            order = np.asarray([p for p, _ in answered], dtype=np.int64)
            chosen, skipped = take_distinct(
                order, problem.embeddings, problem.reference, problem.n, problem.duplicate_threshold
            )
            if len(chosen) == problem.n or ask == len(positions):
                break
            ask = min(2 * ask, len(positions))  # duplicates took places: ask small-text for more
        problem.report["duplicates_skipped"] = skipped
        criterion = dict(answered)
        among = (
            f"; among a random {len(positions):,} of {len(problem.embeddings):,} candidates"
            if len(positions) < len(problem.embeddings)
            else ""
        )
        return [Picked(p, f"{self.name}: {criterion[p]}{among}") for p in chosen]


class SmallTextLightweightCoreset(SmallTextStrategy):
    """Drawn with probability ½ uniform + ½ ∝ squared angular distance to the candidates' mean."""

    name: ClassVar[str] = "small_text_lightweight_coreset"

    def query(self, problem: SelectionProblem, positions: np.ndarray, ask: int) -> list[tuple[int, str]]:
        vectors = _rows_of(problem.embeddings, positions)
        picked = _query_all_unlabeled(_query_strategies().LightweightCoreset(normalize=True), vectors, ask)
        mean = vectors.mean(axis=0)
        mean /= np.linalg.norm(mean)
        angle = np.arccos(np.clip(vectors[picked] @ mean, -1.0, 1.0)) / np.pi
        return [
            (int(positions[i]), f"small-text LightweightCoreset draw, angular distance {a:.3f} to the pool mean")
            for i, a in zip(picked, angle, strict=True)
        ]


class SmallTextKMeans(SmallTextStrategy):
    """The candidate nearest each of n k-means centres (small-text's EmbeddingKMeans, BERT-KM)."""

    name: ClassVar[str] = "small_text_kmeans"
    cap: ClassVar[int | None] = KMEANS_SUBSAMPLE_CAP

    def query(self, problem: SelectionProblem, positions: np.ndarray, ask: int) -> list[tuple[int, str]]:
        strategy = _query_strategies().EmbeddingKMeans(normalize=True)
        picked = _query_all_unlabeled(strategy, _rows_of(problem.embeddings, positions), ask, pbar=None)
        return [
            (int(positions[i]), f"small-text EmbeddingKMeans, nearest to k-means centre {c} of {ask}")
            for c, i in enumerate(picked, 1)
        ]


class SmallTextCal(SmallTextStrategy):
    """Candidates whose predictions diverge most (mean KL) from those of their nearest neighbours.

    The neighbours are other candidates: small-text's CAL reads every neighbour's predicted
    probabilities, and the problem carries them for the candidates only.
    """

    name: ClassVar[str] = "small_text_cal"
    requires: ClassVar[frozenset[str]] = frozenset({"embeddings", "probs"})
    cap: ClassVar[int | None] = CAL_SUBSAMPLE_CAP

    def query(self, problem: SelectionProblem, positions: np.ndarray, ask: int) -> list[tuple[int, str]]:
        if problem.probs.ndim != 2 or problem.probs.shape[1] < 2:
            raise InputError("small_text_cal compares class distributions: it needs one probability per class")
        k = min(CAL_NEIGHBOURS, len(positions))
        strategy = _query_strategies().ContrastiveActiveLearning(k=k, pbar=None)
        vectors, probs = _rows_of(problem.embeddings, positions), _rows_of(problem.probs, positions)
        picked = _query_all_unlabeled(strategy, vectors, ask, probs)
        detail = (
            f"small-text ContrastiveActiveLearning, among the {ask} whose predictions diverge most (mean KL) "
            f"from those of their {k} nearest candidates"
        )
        return [(int(positions[i]), detail) for i in picked]


class SmallTextDal(SmallTextStrategy):
    """Candidates a labeled-vs-unlabeled classifier is surest are unlike the covered items.

    small-text's DiscriminativeActiveLearning with a logistic regression on the embeddings
    (small-text's SklearnClassifierFactory), retrained after each of up to `DAL_SUB_BATCHES`
    sub-batches; the covered items are its labeled pool (a seeded random `DAL_LABELED_CAP` at most).
    With nothing covered there is nothing to tell apart.
    """

    name: ClassVar[str] = "small_text_dal"
    cap: ClassVar[int | None] = DAL_SUBSAMPLE_CAP

    def query(self, problem: SelectionProblem, positions: np.ndarray, ask: int) -> list[tuple[int, str]]:
        from sklearn.linear_model import LogisticRegression
        from small_text.classifiers.factories import SklearnClassifierFactory
        from small_text.data import SklearnDataset

        covered = self._covered(problem)

        x = np.concatenate([_rows_of(problem.embeddings, positions), covered])
        dataset = SklearnDataset(x, np.zeros(len(x), dtype=np.int64), target_labels=np.arange(2))
        factory = SklearnClassifierFactory(LogisticRegression(max_iter=1000), 2)
        rounds = min(DAL_SUB_BATCHES, ask)
        strategy = _query_strategies().DiscriminativeActiveLearning(factory, rounds, pbar=None)
        picked = strategy.query(
            None, dataset, np.arange(len(positions)), np.arange(len(positions), len(x)), _NONE, n=ask
        )
        sizes = strategy._get_query_sizes(rounds, ask)
        sub_batch = np.repeat(np.arange(1, rounds + 1), sizes)
        return [
            (
                int(positions[i]),
                f"small-text DiscriminativeActiveLearning, most surely unlabeled-like in sub-batch {b} of {rounds}",
            )
            for i, b in zip(picked, sub_batch, strict=True)
        ]

    def _covered(self, problem: SelectionProblem) -> np.ndarray:
        covered = problem.covered
        if covered is None or not len(covered):
            raise InputError(
                "small_text_dal tells labeled from unlabeled items and nothing is labeled yet: "
                "use kcenter or typiclust for the first batch"
            )
        if len(covered) > DAL_LABELED_CAP:
            problem.report["small_text_dal_labeled"] = f"{DAL_LABELED_CAP} of {len(covered)}"
            # numpy's global generator is seeded here (select), so every retry draws the same items
            covered = covered[np.sort(np.random.choice(len(covered), DAL_LABELED_CAP, replace=False))]
        return np.asarray(covered, dtype=np.float32)


SMALL_TEXT_STRATEGIES = (SmallTextLightweightCoreset, SmallTextKMeans, SmallTextCal, SmallTextDal)
