"""Set-valued codes (multi-select answers) and the distances α reads between them.

An answer is a set of options; two coders' answers agree fully when the sets are equal and
partly when they overlap. α with a set distance (Krippendorff's α for any difference function)
credits that partial agreement:

- Jaccard distance: 1 − |A ∩ B| / |A ∪ B|;
- MASI (Passonneau 2006, "Measuring agreement on set-valued items (MASI) for semantic and
  pragmatic annotation", LREC): 1 − J·M, J the Jaccard index and M the monotonicity weight
  1 (equal sets), 2/3 (one set inside the other), 1/3 (overlap), 0 (disjoint). The same
  constants as `nltk.metrics.distance.masi_distance` from nltk 3.10.1 (older releases round them
  to 0.67 and 0.33).

Two empty answers (no option chosen) are equal: distance 0 (nltk divides by zero there); an
empty and a non-empty answer are at distance 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

SET_LEVELS: tuple[str, ...] = ("masi", "jaccard")
"""Levels whose values are option sets, named by the distance α uses between them."""
OPTION_SEPARATOR = "|"
"""Joins a set's options in text ('a|b'), as labels.jsonl and predictions.npz write them."""

OptionSet = tuple[str, ...]


def jaccard_distance(a: frozenset[Any], b: frozenset[Any]) -> float:
    union = len(a | b)
    return 0.0 if union == 0 else 1.0 - len(a & b) / union


def masi_distance(a: frozenset[Any], b: frozenset[Any]) -> float:
    union = len(a | b)
    if union == 0:
        return 0.0
    shared = len(a & b)
    if shared == len(a) == len(b):
        monotonicity = 1.0
    elif shared == min(len(a), len(b)):
        monotonicity = 2 / 3
    elif shared > 0:
        monotonicity = 1 / 3
    else:
        monotonicity = 0.0
    return 1.0 - shared / union * monotonicity


SET_DISTANCES: dict[str, Callable[[frozenset[Any], frozenset[Any]], float]] = {
    "masi": masi_distance,
    "jaccard": jaccard_distance,
}


def option_set(raw: Any) -> list[str] | None:
    """The options of one answer: a list (or tuple, set) of options, or text 'a|b' ('' is the
    empty set). None for anything else."""
    if isinstance(raw, (list, tuple, set, frozenset)):
        options = list(raw)
    elif isinstance(raw, str):
        options = [part for part in raw.split(OPTION_SEPARATOR) if part]
    else:
        return None
    if any(not isinstance(o, str) or not o for o in options):
        return None
    return options


def distance_matrix(domain: Sequence[OptionSet], level: str) -> np.ndarray:
    """The level's distance between every two sets of the domain (values × values), from
    their overlap counts at once; equal to `SET_DISTANCES[level]` on each pair."""
    if level not in SET_DISTANCES:
        raise ValueError(f"no set distance {level!r}; one of {', '.join(SET_DISTANCES)}")
    options = sorted({option for value in domain for option in value})
    column = {option: j for j, option in enumerate(options)}
    member = np.zeros((len(domain), len(options)))
    for i, value in enumerate(domain):
        member[i, [column[o] for o in value]] = 1.0
    shared = member @ member.T
    size = member.sum(axis=1)
    union = size[:, None] + size[None, :] - shared
    with np.errstate(divide="ignore", invalid="ignore"):
        similarity = np.where(union > 0, shared / np.where(union > 0, union, 1), 1.0)
    if level == "masi":
        equal = (shared == size[:, None]) & (shared == size[None, :])
        inside = shared == np.minimum(size[:, None], size[None, :])
        monotonicity = np.select([equal, inside, shared > 0], [1.0, 2 / 3, 1 / 3], 0.0)
        similarity = np.where(union > 0, similarity * monotonicity, 1.0)
    return 1.0 - similarity
