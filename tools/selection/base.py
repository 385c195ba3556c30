"""The selection interface: what a strategy is given, what it returns, what it requires."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

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
    held-out and already-selected items.
    """

    n: int
    rng: np.random.Generator
    duplicate_threshold: float
    embeddings: np.ndarray | None = None
    probs: np.ndarray | None = None
    reference: np.ndarray | None = None
    options: dict = field(default_factory=dict)


class Strategy(Protocol):
    name: ClassVar[str]
    requires: ClassVar[frozenset[str]]
    """Subset of {"probs", "embeddings"}: checked once, before the strategy runs."""

    def select(self, problem: SelectionProblem) -> list[Picked]: ...


def check_requirements(strategy: Strategy, problem: SelectionProblem) -> None:
    missing = [r for r in sorted(strategy.requires) if getattr(problem, r) is None]
    if missing:
        hint = "run score_pool first" if "probs" in missing else "embed the pool first"
        raise InputError(f"strategy {strategy.name!r} needs {', '.join(missing)}; {hint}")
