"""Which pool items a batch may contain, and the vectors a batch is measured against.

Two different sets, kept apart on purpose:
- `covered`: pool items already labeled or selected. k-center measures coverage from them.
- `duplicates_of`: those plus the held-out set. A candidate this close to any of them is never
  picked (a near-copy of a test item would leak it into training), but the held-out set does
  not count as covered: it must not steer which regions of the pool get labeled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alloop.tools.errors import InputError, StateError
from alloop.tools.run.items import ItemTable
from alloop.tools.run.labels import answered_items
from alloop.tools.run.rundir import RunDir


def excluded_items(run: RunDir, current_round: int) -> set[str]:
    """Items a batch may never contain: answered, held-out, or selected in an earlier round."""
    excluded = answered_items(run.labels())
    heldout = run.heldout()
    if heldout is not None:
        excluded |= set(heldout.ids)
    for round_ in run.selection_rounds():
        if round_ != current_round:
            excluded |= {row.item_id for row in run.selection(round_)}
    return excluded


@dataclass
class Candidates:
    """The unlabeled pool items a batch may draw from, with the two reference sets."""

    positions: np.ndarray
    """Pool positions of the candidates."""
    covered: np.ndarray
    """Unit vectors of labeled and selected pool items."""
    duplicates_of: np.ndarray
    """Unit vectors of covered items and the held-out set."""

    def __len__(self) -> int:
        return len(self.positions)


class Rows:
    """The rows of a matrix at `positions`, gathered only when indexed: the candidates' vectors
    without a copy of a million-row pool. Indexing (an int, a slice, an index array) returns a
    float32 array, as indexing the gathered matrix would; `np.asarray` gathers them all."""

    def __init__(self, matrix: np.ndarray, positions: np.ndarray) -> None:
        self.matrix = matrix
        self.positions = np.asarray(positions, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.positions), self.matrix.shape[1])

    def __getitem__(self, index: int | slice | np.ndarray | list[int]) -> np.ndarray:
        return np.asarray(self.matrix[self.positions[index]], dtype=np.float32)

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        return np.asarray(self.matrix[self.positions], dtype=dtype or np.float32)


def vectors_of(strategy: object, matrix: np.ndarray, positions: np.ndarray) -> np.ndarray | Rows:
    """The candidates' vectors: a lazy view for a strategy that only indexes them (`gathers_rows`), so a
    million-row pool is not copied; a gathered float32 array for one that computes on all of them."""
    if getattr(strategy, "gathers_rows", False):
        return Rows(matrix, positions)
    return np.asarray(matrix[positions], dtype=np.float32)


def check_batch_fits(n: int, available: int, what: str = "batch") -> None:
    """A batch of n from `available` candidates, or an error that says what to ask for."""
    if available == 0:
        raise StateError("the pool is exhausted: every item is labeled, held out, selected or a near-duplicate")
    if n > available:
        raise InputError(
            f"{what} size {n} is larger than the {available} items that can still be picked (not labeled, held "
            f"out, selected or a near-duplicate of those); ask for at most {available}"
        )


def pool_candidates(
    run: RunDir, current_round: int, pool: ItemTable, pool_x: np.ndarray, heldout_x: np.ndarray | None
) -> Candidates:
    is_candidate = ~pool.contains(sorted(excluded_items(run, current_round)))
    covered = np.asarray(pool_x[np.flatnonzero(~is_candidate)], dtype=np.float32)
    duplicates_of = covered if heldout_x is None else np.concatenate([covered, heldout_x])
    return Candidates(np.flatnonzero(is_candidate), covered, duplicates_of)
