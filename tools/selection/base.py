"""The selection interface: what a strategy is given, what it returns, what it requires."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from alloop.tools.errors import InputError


@dataclass
class Picked:
    """A chosen candidate (position in the candidate arrays) and why it was chosen."""

    position: int
    reason: str


@dataclass
class SelectionProblem:
    """Everything a strategy may look at; arrays are aligned over the unlabeled candidates.

    `reference` holds unit-norm embeddings of items a batch must not duplicate: labeled,
    held-out and already-selected items. `covered` holds only the labeled and selected pool
    items: coverage (k-center) is measured from them, never from the held-out set. The seed
    strategies also read `known_vectors`/`known_labels` (items whose labels are known before
    the seed), `texts` (of the candidates), `keywords` (label → words) and `label_vectors`
    (unit embeddings of the label names, aligned with `labels`). `posterior` (BALD) draws
    the head's class probabilities under its weight posterior (laplace.py). A strategy writes
    what it wants said in `report` (e.g. `duplicates_skipped`).
    """

    n: int
    rng: np.random.Generator
    duplicate_threshold: float
    embeddings: np.ndarray | None = None
    probs: np.ndarray | None = None
    reference: np.ndarray | None = None
    covered: np.ndarray | None = None
    known_vectors: np.ndarray | None = None
    known_labels: list[str] | None = None
    texts: list[str] | None = None
    keywords: dict[str, list[str]] | None = None
    label_vectors: np.ndarray | None = None
    posterior: Any = None
    labels: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)


class Strategy(Protocol):
    name: ClassVar[str]
    requires: ClassVar[frozenset[str]]
    """Subset of {"probs", "embeddings", "posterior"}: checked once, before the strategy runs."""

    def select(self, problem: SelectionProblem) -> list[Picked]: ...


def check_requirements(strategy: Strategy, problem: SelectionProblem) -> None:
    missing = [r for r in sorted(strategy.requires) if getattr(problem, r) is None]
    if missing:
        hints = "; ".join(dict.fromkeys(_HINTS.get(r, f"give {r}") for r in missing))
        raise InputError(f"strategy {strategy.name!r} needs {', '.join(missing)}; {hints}")


_HINTS = {
    "probs": "run score_pool first",
    "embeddings": "embed the pool first",
    "posterior": "train a logistic head (train_glmm) first",
    "keywords": "give keywords as {label: [words, ...]}",
}
