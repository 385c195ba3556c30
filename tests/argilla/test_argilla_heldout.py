"""Held-out overlap items through Argilla: push_to_argilla sends them to every annotator beside the
batch (no suggestion), and their answers come back under the held-out ids until two people gave them.

They are the items export_batch, build_jspsych and simulate_annotator send
(alloop.tools.people.overlap), so an Argilla study gives check_convergence its human ceiling.
"""

from __future__ import annotations

import httpx
import pytest
from argilla_testkit import Annotator, pool_rows, select

from alloop.tools.base import ToolContext
from alloop.tools.errors import InputError
from alloop.tools.people.overlap import heldout_overlap, still_open
from alloop.tools.pull_from_argilla import PullFromArgillaInput, pull_from_argilla
from alloop.tools.push_to_argilla import PushToArgillaInput, push_to_argilla
from alloop.tools.run.items import ItemTable
from alloop.tools.run.rundir import RunDir, RunRoot
from alloop.tools.run.schema import TaskSpec

HELDOUT = [
    {"id": f"gold-{i:02d}", "text": f"Held-out sentence {i} about {'cats' if i % 2 else 'dogs'}.", "label": "yes"}
    for i in range(6)
]


def heldout_run(root: RunRoot, name: str, annotators_per_item: int) -> RunDir:
    """A binary run with six held-out items; round 1 selects four pool items."""
    spec = TaskSpec(
        run=name,
        task_type="binary",
        labels=["no", "yes"],
        annotators_per_item=annotators_per_item,
        destination="argilla",
    )
    run = root.create(spec, ItemTable.from_rows(pool_rows(8)), ItemTable.from_rows(HELDOUT, "heldout"))
    select(run, 1, [f"item-{i:03d}" for i in range(4)], predictions=["yes", "no", "yes", "no"])
    return run


def test_heldout_records_need_a_dataset_that_waits_for_two_people(ctx: ToolContext) -> None:
    heldout_run(ctx.root, "single", annotators_per_item=1)
    with pytest.raises(InputError, match=r"completes a record after 1 answer.*set annotators_per_item to 2"):
        push_to_argilla(PushToArgillaInput(run="single", round=1, include_heldout=3), ctx)


@pytest.mark.integration
def test_heldout_records_reach_both_annotators_and_come_back_under_their_ids(
    argilla_env, ctx: ToolContext, annotators: dict[str, Annotator]
) -> None:
    run = heldout_run(ctx.root, "ceiling", annotators_per_item=2)
    overlap = heldout_overlap(run, 3)
    pushed = push_to_argilla(
        PushToArgillaInput(run="ceiling", round=1, annotators=["ann1", "ann2"], include_heldout=3), ctx
    )
    assert (pushed.records, pushed.heldout, pushed.suggestions) == (7, 3, 0)  # suggestions are off by default

    api = httpx.Client(base_url=argilla_env.url, headers={"X-Argilla-Api-Key": argilla_env.owner_key}, timeout=30)
    records = api.get(
        f"/api/v1/datasets/{pushed.dataset_id}/records", params={"include": ["suggestions"], "limit": 100}
    ).json()["items"]
    held = {r["external_id"]: r for r in records if r["external_id"] in overlap}
    assert sorted(held) == sorted(overlap)
    first = held[overlap[0]]
    assert first["fields"] == {"text": next(h["text"] for h in HELDOUT if h["id"] == overlap[0])}
    assert first["metadata"]["strategy"] == "heldout-overlap" and first["metadata"]["round"] == 1
    assert first["suggestions"] == [] and "prediction" not in first["metadata"]

    dataset_id = annotators["ann1"].dataset_id("ceiling")
    for name, answer in (("ann1", "yes"), ("ann2", "no")):
        given = annotators[name].answer_queue(dataset_id, lambda record, answer=answer: (answer, "submitted"))
        assert set(overlap) <= set(given)  # each annotator's queue holds the held-out records
    pulled = pull_from_argilla(PullFromArgillaInput(run="ceiling"), ctx)
    assert pulled.new_events == 14 and pulled.by_annotator == {"ann1": 7, "ann2": 7}
    on_heldout = {(e.item_id, e.annotator, e.label) for e in run.labels() if e.item_id in overlap}
    assert on_heldout == {(i, a, label) for i in overlap for a, label in (("ann1", "yes"), ("ann2", "no"))}
    assert still_open(run, run.spec(), overlap) == []  # two people each: the ceiling can be measured

    again = push_to_argilla(PushToArgillaInput(run="ceiling", round=1, include_heldout=3), ctx)
    assert (again.records, again.heldout) == (4, 0)  # nobody is asked for them again
