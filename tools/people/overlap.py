"""The held-out overlap: held-out items every annotator is asked for, so the human ceiling can be measured.

check_convergence sets the model beside people on held-out items that two or more people
labeled. These are the items to send: a fixed hashed order of the held-out ids, so every call and
every destination asks for the same items, spread over the set whatever order its file had.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from alloop.tools.errors import StateError
from alloop.tools.run.labels import HUMAN_SOURCES, current_labels
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import TaskSpec


def heldout_overlap(run: RunDir, n: int) -> list[str]:
    """The first `n` held-out items in the fixed order (all of them when the set is smaller)."""
    if n <= 0:
        return []
    heldout = run.heldout()
    if heldout is None:
        raise StateError(
            f"run {run.name!r} has no held-out set, so there is no human ceiling to measure; leave include_heldout at 0"
        )
    return sorted(heldout.ids, key=lambda i: hashlib.sha256(i.encode("utf-8")).hexdigest())[:n]


def people_needed(spec: TaskSpec) -> int:
    """People per held-out item: the spec's overlap, and never fewer than the two a ceiling needs."""
    return max(2, spec.annotators_per_item)


def still_open(run: RunDir, spec: TaskSpec, item_ids: list[str]) -> list[str]:
    """Those of `item_ids` fewer than `people_needed` people have labeled (judges never count)."""
    people: dict[str, set[str]] = defaultdict(set)
    for (item, annotator, is_judge), event in current_labels(run.labels()).items():
        if not is_judge and event.source in HUMAN_SOURCES:
            people[item].add(annotator)
    needed = people_needed(spec)
    return [i for i in item_ids if len(people[i]) < needed]
