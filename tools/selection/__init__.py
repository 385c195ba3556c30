"""Selection strategies: one family, one interface (`base.Strategy`), a registry by name."""

from __future__ import annotations

from alloop.tools.errors import InputError
from alloop.tools.selection.badge import Badge
from alloop.tools.selection.bald import Bald
from alloop.tools.selection.base import Picked, SelectionProblem, Strategy, check_requirements
from alloop.tools.selection.class_balance import ClassBalance
from alloop.tools.selection.cluster_margin import ClusterMargin
from alloop.tools.selection.coreset import KCenterGreedy
from alloop.tools.selection.hybrid import UncertainThenDiverse
from alloop.tools.selection.small_text import SMALL_TEXT_STRATEGIES
from alloop.tools.selection.typiclust import TypiClust
from alloop.tools.selection.uncertainty import Entropy, LeastConfidence, Margin, PowerMargin, RandomSampling

STRATEGIES: dict[str, type] = {
    cls.name: cls
    for cls in (
        RandomSampling,
        LeastConfidence,
        Margin,
        PowerMargin,
        Entropy,
        KCenterGreedy,
        UncertainThenDiverse,
        Badge,
        TypiClust,
        Bald,
        ClusterMargin,
        ClassBalance,
        *SMALL_TEXT_STRATEGIES,
    )
}
ALIASES = {"coreset": "kcenter", "k_center": "kcenter", "kcenter_greedy": "kcenter"}


def get_strategy(name: str) -> Strategy:
    key = ALIASES.get(name, name)
    if key not in STRATEGIES:
        raise InputError(f"unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}")
    return STRATEGIES[key]()


__all__ = ["STRATEGIES", "Picked", "SelectionProblem", "Strategy", "check_requirements", "get_strategy"]
