"""Lists: which items each participant sees.

A list is an ordered set of item ids. `make_lists` builds them from the items and the
ListConfig (all items, a seeded split, or a Latin square over groups × conditions) and says
clearly when the items cannot make the lists asked for.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from alloop.tools.errors import InputError
from alloop.tools.jspsych.config import ListConfig


def make_lists(items: Sequence[dict[str, Any]], config: ListConfig, seed: int = 0) -> list[list[str]]:
    """Item ids per list, in a stable order (the browser shuffles per participant)."""
    ids = [str(item["id"]) for item in items]
    if not ids:
        raise InputError("no items to build lists from: the batch is empty")
    if config.mode == "all":
        return [ids]
    if config.mode == "split":
        return _split(items, config, seed)
    return latin_square(items, str(config.group_field), str(config.condition_field))


def _split(items: Sequence[dict[str, Any]], config: ListConfig, seed: int) -> list[list[str]]:
    n = config.n_lists
    if n > len(items):
        raise InputError(
            f"lists.n_lists is {n} but the batch has only {len(items)} items: "
            "use at most as many lists as items, or mode 'all'"
        )
    rng = random.Random(seed)
    by_condition: dict[str, list[str]] = defaultdict(list)
    for item in items:
        key = str(item.get(config.condition_field, "")) if config.condition_field else ""
        if config.condition_field and config.condition_field not in item:
            raise InputError(f"item {item['id']!r} has no field {config.condition_field!r} (lists.condition_field)")
        by_condition[key].append(str(item["id"]))
    lists: list[list[str]] = [[] for _ in range(n)]
    offset = 0
    for key in sorted(by_condition):
        group = by_condition[key]
        rng.shuffle(group)
        for i, item_id in enumerate(group):
            lists[(offset + i) % n].append(item_id)
        offset += len(group)
    return lists


def latin_square(items: Sequence[dict[str, Any]], group_field: str, condition_field: str) -> list[list[str]]:
    """C lists from G groups × C conditions: list k takes group g in condition (g + k) mod C.

    Every group must have exactly one item in every condition.
    """
    conditions: list[str] = []
    table: dict[str, dict[str, str]] = defaultdict(dict)
    for item in items:
        for field in (group_field, condition_field):
            if field not in item or item[field] is None:
                raise InputError(f"item {item['id']!r} has no field {field!r}, which the Latin square needs")
        group, condition = str(item[group_field]), str(item[condition_field])
        if condition not in conditions:
            conditions.append(condition)
        if condition in table[group]:
            raise InputError(
                f"group {group!r} has two items in condition {condition!r} "
                f"({table[group][condition]!r} and {item['id']!r}): each group needs one item per condition"
            )
        table[group][condition] = str(item["id"])
    conditions.sort()
    groups = sorted(table)
    if len(conditions) < 2:
        raise InputError(f"a Latin square needs two or more conditions in {condition_field!r}, got {conditions}")
    for group in groups:
        missing = [c for c in conditions if c not in table[group]]
        if missing:
            raise InputError(f"group {group!r} lacks conditions {missing}: each group needs one item per condition")
    if len(conditions) > len(groups):
        raise InputError(
            f"{len(conditions)} conditions but only {len(groups)} groups: a Latin square needs at least "
            "as many groups as conditions (more lists than items per list otherwise)"
        )
    return [
        [table[group][conditions[(g + k) % len(conditions)]] for g, group in enumerate(groups)]
        for k in range(len(conditions))
    ]
