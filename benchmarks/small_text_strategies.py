"""Which of small-text's query strategies are fast enough to wrap (issue 15)?

Times each `small_text_*` adapter (tools/selection/small_text.py, with its subsample caps) picking
100 from 10,000 and 100,000 random unit vectors (384-d, 5 classes of Dirichlet(1) probabilities,
500 covered items that are also the reference set), next to alloop's margin and kcenter on the same
input in the same run. Rows marked "no cap" run small-text on every candidate: they show why a cap
is there. SEALS (around BreakingTies) is timed when hnswlib imports; it is not wrapped. A row that
takes longer than `LIMIT` seconds at one size is not run at the larger one.

One BLAS/OpenMP thread by default (`--threads`, for margin, kcenter and SEALS; the adapters pin
small-text to one thread themselves): on a shared 2-core machine more threads spin on small
products. small-text's own import (it imports torch) is paid once before timing. Run by hand:
`.venv/bin/python benchmarks/small_text_strategies.py [--sizes 10000 100000] [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
from threadpoolctl import threadpool_limits

from alloop.tools.selection import SelectionProblem, get_strategy
from alloop.tools.selection import small_text as wrapped

DIMENSION = 384
CLASSES = 5
COVERED = 500
BATCH = 100
LIMIT = 2.0
"""Seconds at 100,000 candidates under which a strategy is registered without a subsample."""


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    x = rng.normal(size=(count, DIMENSION)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_problem(x: np.ndarray, probs: np.ndarray, covered: np.ndarray) -> SelectionProblem:
    return SelectionProblem(
        n=BATCH,
        rng=np.random.default_rng(1),
        duplicate_threshold=0.97,
        embeddings=x,
        probs=probs,
        reference=covered,
        covered=covered,
    )


def by_name(name: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], int]:
    def select(x: np.ndarray, probs: np.ndarray, covered: np.ndarray) -> int:
        return len(get_strategy(name).select(make_problem(x, probs, covered)))

    return select


def uncapped(strategy: type) -> Callable[[np.ndarray, np.ndarray, np.ndarray], int]:
    """The adapter with its subsample cap lifted: small-text on every candidate."""

    def select(x: np.ndarray, probs: np.ndarray, covered: np.ndarray) -> int:
        lifted = type(f"{strategy.__name__}NoCap", (strategy,), {"cap": None})
        return len(lifted().select(make_problem(x, probs, covered)))

    return select


def seals_breaking_ties(x: np.ndarray, probs: np.ndarray, covered: np.ndarray) -> int:
    """small-text's SEALS around BreakingTies: an HNSW index of the candidates, built on each call."""
    from small_text.query_strategies import SEALS, BreakingTies

    everything = np.concatenate([x, covered])
    covered_probs = np.full((len(covered), probs.shape[1]), 1.0 / probs.shape[1], dtype=probs.dtype)
    classifier = wrapped._Precomputed(everything, np.concatenate([probs, covered_probs]))
    labeled = np.arange(len(x), len(everything))
    picked = SEALS(BreakingTies(), k=100).query(
        classifier, wrapped._Rows(np.arange(len(everything))), np.arange(len(x)), labeled, None, n=BATCH, pbar=None
    )
    return len(picked)


def contenders() -> dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], int]]:
    rows = {"margin (alloop)": by_name("margin"), "kcenter (alloop)": by_name("kcenter")}
    for strategy in wrapped.SMALL_TEXT_STRATEGIES:
        rows[strategy.name] = by_name(strategy.name)
        if strategy.cap is not None:
            rows[f"{strategy.name} (no cap)"] = uncapped(strategy)
    try:
        import hnswlib  # noqa: F401

        rows["SEALS(BreakingTies), not wrapped"] = seals_breaking_ties
    except ImportError:
        print("hnswlib is not installed: SEALS is not timed")
    return rows


def median_seconds(select: Callable[[], int], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        assert select() == BATCH
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads; 0: the libraries' default")
    args = parser.parse_args()
    wrapped._query_strategies()  # small-text imports torch: once, outside the timings
    rng = np.random.default_rng(0)
    covered = unit_vectors(rng, COVERED)
    rows = contenders()
    seconds: dict[str, dict[int, float | None]] = {name: {} for name in rows}
    with threadpool_limits(args.threads or None):
        for size in sorted(args.sizes):
            x = unit_vectors(rng, size)
            probs = rng.dirichlet(np.ones(CLASSES), size=size).astype(np.float32)
            for name, select in rows.items():
                too_slow = any(s is None or s > LIMIT for s in seconds[name].values())
                run = partial(select, x, probs, covered)
                seconds[name][size] = None if too_slow else median_seconds(run, args.repeats)
                print(f"  {name} at {size:,}: {seconds[name][size]}", flush=True)
    print_table(seconds, sorted(args.sizes))


def print_table(seconds: dict[str, dict[int, float | None]], sizes: list[int]) -> None:
    print(
        f"\n| strategy ({BATCH} picked, {COVERED} covered) | " + " | ".join(f"{s:,} candidates" for s in sizes) + " |"
    )
    print("|---|" + "---|" * len(sizes))
    for name, by_size in seconds.items():
        cells = [f"{by_size[s]:.2f} s" if by_size[s] is not None else f"not run (> {LIMIT:g} s before)" for s in sizes]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
