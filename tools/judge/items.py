"""Which items a judging call takes, and what the judge sees of each.

The judge sees spec.text_fields only, never a gold label; for adjudication it also sees the
answers people gave, unnamed.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Literal

from alloop.tools.errors import InputError, StateError
from alloop.tools.judge.engine import JudgeItem
from alloop.tools.run.labels import HUMAN_SOURCES, answered_items, live_events
from alloop.tools.run.rundir import RunDir
from alloop.tools.run.schema import LabelEvent, TaskSpec

ItemSource = Literal["selection", "unlabeled", "heldout", "disagreements"]
DEFAULT_SOURCE: dict[str, ItemSource] = {
    "evaluation": "heldout",
    "prioritization": "unlabeled",
    "adjudication": "disagreements",
    "pseudo_labeling": "unlabeled",
}


def human_labels(events: list[LabelEvent]) -> dict[str, list[LabelEvent]]:
    """item id → the standing answers people submitted for it."""
    by_item: dict[str, list[LabelEvent]] = defaultdict(list)
    for event in live_events(events):
        if event.source in HUMAN_SOURCES and event.status == "submitted":
            by_item[event.item_id].append(event)
    return by_item


def choose_items(
    run: RunDir,
    spec: TaskSpec,
    events: list[LabelEvent],
    *,
    use: str,
    round_: int,
    items: list[str] | None,
    source: ItemSource | None,
    limit: int,
) -> list[tuple[str, str]]:
    """(item id, 'pool' | 'heldout') pairs to judge: the items named, else up to `limit` from the source."""
    pool = run.pool()
    heldout = run.heldout()
    heldout_ids = set(heldout.ids) if heldout is not None else set()
    if items is not None:
        pool_ids = pool.index_of()
        unknown = [i for i in items if i not in pool_ids and i not in heldout_ids]
        if unknown:
            raise InputError(f"items {unknown[:5]} are in neither the pool nor the held-out set of run {run.name!r}")
        chosen = [(i, "heldout" if i in heldout_ids else "pool") for i in dict.fromkeys(items)]
        return chosen[:limit]
    source = source or DEFAULT_SOURCE[use]
    rng = random.Random(spec.selection.seed + round_)
    if source == "selection":
        return [(row.item_id, "pool") for row in run.selection(round_)][:limit]
    if source == "heldout":
        if heldout is None:
            raise StateError(f"run {run.name!r} has no held-out set; pick source 'selection' or 'unlabeled'")
        ids = list(heldout.ids)
        return [(i, "heldout") for i in (rng.sample(ids, limit) if len(ids) > limit else ids)]
    if source == "unlabeled":  # no answer from people (and, for pseudo-labeling, none from a judge yet)
        answered = answered_items(events)
        if use == "pseudo_labeling":
            answered |= {e.item_id for e in events if e.source == "judge"}
        ids = [i for i in pool.ids if i not in answered]
        if not ids:
            raise StateError(f"run {run.name!r} has no unlabeled pool items left")
        return [(i, "pool") for i in (rng.sample(ids, limit) if len(ids) > limit else ids)]
    human = human_labels(events)
    split = [i for i in pool.ids if len({str(e.label) for e in human.get(i, [])}) > 1]
    if not split:
        raise StateError(f"run {run.name!r} has no pool items whose human labels disagree; nothing to adjudicate")
    return [(i, "pool") for i in split[:limit]]


def build_items(
    run: RunDir, spec: TaskSpec, chosen: list[tuple[str, str]], use: str, events: list[LabelEvent]
) -> list[JudgeItem]:
    """The chosen items as the judge sees them, in the order chosen."""
    human = human_labels(events) if use == "adjudication" else {}
    tables = {"pool": run.pool(), "heldout": run.heldout()}
    items = []
    for set_name in ("pool", "heldout"):
        ids = [i for i, s in chosen if s == set_name]
        if not ids:
            continue
        table = tables[set_name]
        assert table is not None
        missing = [f for f in spec.text_fields if not table.has(f)]
        if missing:
            raise InputError(f"{table.source}: text field(s) {missing} not found; fix spec.text_fields")
        for row in table.rows(table.positions(ids)):
            fields = {f: "" if row.get(f) is None else str(row[f]) for f in spec.text_fields}
            annotations = None
            if use == "adjudication":
                annotations = [
                    {"annotator": f"annotator {n}", "label": e.label}
                    for n, e in enumerate(human.get(str(row["id"]), []), start=1)
                ]
            items.append(JudgeItem(item_id=str(row["id"]), fields=fields, item_set=set_name, annotations=annotations))
    order = {item_id: n for n, (item_id, _) in enumerate(chosen)}
    return sorted(items, key=lambda item: order[item.item_id])
