"""Blind annotation on a real Argilla 2.8 server: an annotator labels the items the model is least
sure of without its guess pre-filled, and sees neither why an item was chosen nor what the model
thinks; owners see alloop's item id and the selection's reasons."""

from __future__ import annotations

import httpx
import pytest
from argilla_testkit import Annotator, make_run, select

from alloop.tools.base import ToolContext
from alloop.tools.push_to_argilla import PushToArgillaInput, push_to_argilla

pytestmark = pytest.mark.integration

HIDDEN = {"item_id", "rank", "strategy", "reason", "prediction", "confidence", "model_version"}


def test_uncertain_batch_reaches_annotators_without_the_models_guess(
    argilla_env, ctx: ToolContext, annotators: dict[str, Annotator]
) -> None:
    run = make_run(ctx.root, "blind", annotators_per_item=1)
    select(run, 1, ["item-000", "item-001", "item-002"], predictions=["yes", "no", "yes"], strategy="margin")
    pushed = push_to_argilla(PushToArgillaInput(run="blind", round=1, annotators=["ann1"]), ctx)
    assert (pushed.records, pushed.suggestions, pushed.suggest) == (3, 0, False)
    assert run.destinations()["argilla"]["rounds"]["1"]["suggestions"] is False  # the push record says which

    # The annotator's queue: nothing pre-filled, nothing of the selection or the model to see.
    ann1 = annotators["ann1"]
    queue = ann1.queue(ann1.dataset_id("blind"))
    assert len(queue) == 3
    for record in queue:
        assert record["suggestions"] == [] and record["responses"] == []
        assert not HIDDEN & set(record["metadata"]), record["metadata"]

    # Owners: every record names alloop's item id, next to the selection's reason.
    owner = httpx.Client(base_url=argilla_env.url, headers={"X-Argilla-Api-Key": argilla_env.owner_key}, timeout=30)
    props = owner.get(f"/api/v1/me/datasets/{pushed.dataset_id}/metadata-properties").json()["items"]
    visible = {p["name"]: p["visible_for_annotators"] for p in props}
    assert {name: visible[name] for name in HIDDEN} == dict.fromkeys(HIDDEN, False)
    records = owner.get(f"/api/v1/datasets/{pushed.dataset_id}/records", params={"limit": 100}).json()["items"]
    assert {r["external_id"]: r["metadata"]["item_id"] for r in records} == {
        i: i for i in ("item-000", "item-001", "item-002")
    }
    assert all(r["metadata"]["reason"].startswith("margin rank") for r in records)
