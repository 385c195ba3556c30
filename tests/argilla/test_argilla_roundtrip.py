"""push_to_argilla and pull_from_argilla against a real Argilla 2.8 server.

Two annotators answer through Argilla's own REST API as their browsers would; the run's files
must then hold every answer exactly once, with who gave it and when.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from argilla_testkit import Annotator, make_run, select

from alloop.tools.argilla import argilla_progress
from alloop.tools.base import ToolContext
from alloop.tools.pull_from_argilla import PullFromArgillaInput, pull_from_argilla
from alloop.tools.push_to_argilla import PushToArgillaInput, push_to_argilla
from alloop.tools.run.rundir import read_jsonl
from alloop.tools.status import StatusInput, status

pytestmark = pytest.mark.integration


def owner(stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url, headers={"X-Argilla-Api-Key": stack.owner_key}, timeout=30)


def test_two_rounds_two_annotators(argilla_env, ctx: ToolContext, annotators: dict[str, Annotator]) -> None:
    run = make_run(ctx.root, "cats", annotators_per_item=2, suggestions=True)
    round1 = [f"item-{i:03d}" for i in range(4)]
    select(run, 1, round1, predictions=["yes", "no", "yes", "no"])

    pushed = push_to_argilla(PushToArgillaInput(run="cats", round=1, annotators=["ann1", "ann2"]), ctx)
    assert (pushed.records, pushed.created, pushed.updated, pushed.suggestions) == (4, 4, 0, 4)
    assert pushed.created_dataset and pushed.question == "label_selection" and pushed.annotators_per_item == 2

    # The dataset is built from spec.json.
    api = owner(argilla_env)
    ds = api.get(f"/api/v1/datasets/{pushed.dataset_id}").json()
    assert ds["guidelines"] == "Say whether the sentence is about cats."
    assert ds["distribution"] == {"strategy": "overlap", "min_submitted": 2}
    (question,) = api.get(f"/api/v1/datasets/{pushed.dataset_id}/questions").json()["items"]
    assert question["name"] == "label" and question["settings"]["type"] == "label_selection"
    assert [o["value"] for o in question["settings"]["options"]] == ["no", "yes"]
    assert [f["name"] for f in api.get(f"/api/v1/datasets/{pushed.dataset_id}/fields").json()["items"]] == ["text"]

    # Each record: keyed by item id, with the selection's metadata and (asked for) the model's suggestion.
    records = api.get(
        f"/api/v1/datasets/{pushed.dataset_id}/records", params={"include": ["suggestions"], "limit": 100}
    ).json()["items"]
    first = next(r for r in records if r["external_id"] == "item-000")
    assert first["fields"] == {"text": "Sentence number 0 about dogs."}
    assert first["metadata"]["item_id"] == "item-000"
    assert first["metadata"]["round"] == 1 and first["metadata"]["strategy"] == "entropy"
    assert first["metadata"]["prediction"] == "yes" and first["metadata"]["model_version"] == "round00-logistic"
    assert first["metadata"]["confidence"] == pytest.approx(0.55)
    assert first["metadata"]["score_entropy"] == pytest.approx(0.1)
    assert first["metadata"]["reason"].startswith("entropy rank 1")
    (suggestion,) = first["suggestions"]
    assert (suggestion["value"], suggestion["agent"]) == ("yes", "round00-logistic")
    assert suggestion["score"] == pytest.approx(0.55)

    # Pushing the same batch again updates, never duplicates.
    again = push_to_argilla(PushToArgillaInput(run="cats", round=1), ctx)
    assert (again.created, again.updated, again.created_dataset) == (0, 4, False)
    assert api.get(f"/api/v1/datasets/{pushed.dataset_id}/records").json()["total"] == 4

    # ann1 answers all four; ann2 answers two, discards one, leaves one as a draft.
    ann1, ann2 = annotators["ann1"], annotators["ann2"]
    dataset_id = ann1.dataset_id("cats")
    truth = {"item-000": "no", "item-001": "yes", "item-002": "no", "item-003": "yes"}
    ann1.answer_queue(dataset_id, lambda r: (truth[r["external_id"]], "submitted"))
    plan2 = {"item-000": ("no", "submitted"), "item-001": ("no", "submitted"),
             "item-002": (None, "discarded"), "item-003": ("yes", "draft")}
    given2 = ann2.answer_queue(dataset_id, lambda r: plan2[r["external_id"]])
    assert len(given2) == 4
    before = status(StatusInput(run="cats"), ctx)  # status reads Argilla: answers wait to be pulled
    assert before.next_step.startswith("pull_from_argilla: 7 answers for round 1")
    assert before.annotation_progress["rounds"]["1"]["not_pulled"] == 7

    pulled = pull_from_argilla(PullFromArgillaInput(run="cats"), ctx)
    assert (pulled.new_events, pulled.submitted, pulled.discarded, pulled.drafts_left) == (7, 6, 1, 1)
    assert pulled.by_annotator == {"ann1": 4, "ann2": 3} and pulled.by_round == {"1": 7}

    labels = run.labels()
    assert len(labels) == 7
    for event in labels:
        assert event.source == "human" and event.destination == "argilla" and event.round == 1
        assert event.annotator in {"ann1", "ann2"} and event.external_id and event.time.endswith("+00:00")
    both = sorted((e.annotator, e.label) for e in labels if e.item_id == "item-000")
    assert both == [("ann1", "no"), ("ann2", "no")]  # several annotators per record: all kept
    discarded = [e for e in labels if e.status == "discarded"]
    assert [(e.item_id, e.annotator, e.label) for e in discarded] == [("item-002", "ann2", None)]
    assert not any(e.item_id == "item-003" and e.annotator == "ann2" for e in labels)  # the draft stays
    round_file = read_jsonl(run.round_file("annotation", 1))
    assert sorted(r["event_id"] for r in round_file) == sorted(e.event_id for e in labels)
    ids = {e.extra["argilla_response_id"] for e in labels if e.annotator == "ann2"}
    assert ids == {given2[i]["id"] for i in ("item-000", "item-001", "item-002")}

    # Pulling twice adds nothing.
    twice = pull_from_argilla(PullFromArgillaInput(run="cats"), ctx)
    assert (twice.new_events, twice.already_pulled) == (0, 7)
    assert len(run.labels()) == 7

    # Progress: item-000 and item-001 have two submitted answers; the rest wait.
    progress = argilla_progress(run)
    r1 = progress["rounds"]["1"]
    assert (r1["records"], r1["done"], r1["pending"], r1["not_pulled"]) == (4, 2, 2, 0)
    assert r1["per_annotator"]["ann1"] == {"submitted": 4, "discarded": 0, "draft": 0, "to_do": 0}
    assert r1["per_annotator"]["ann2"] == {"submitted": 2, "discarded": 1, "draft": 1, "to_do": 1}

    # ann2 submits the draft; ann1 changes an answer: one new event, one correction.
    ann2.change(given2["item-003"]["id"], "yes")
    first_answer = next(e for e in labels if e.item_id == "item-001" and e.annotator == "ann1")
    ann1.change(first_answer.extra["argilla_response_id"], "no")
    third = pull_from_argilla(PullFromArgillaInput(run="cats"), ctx)
    assert (third.new_events, third.corrections, third.drafts_left) == (2, 1, 0)
    correction = next(e for e in run.labels() if e.supersedes)
    assert (correction.item_id, correction.annotator, correction.label) == ("item-001", "ann1", "no")
    assert correction.supersedes == first_answer.event_id

    # Round 2: other items, a new uncertainty score, a new model version.
    round2 = [f"item-{i:03d}" for i in range(4, 7)]
    select(run, 2, round2, predictions=["no", "yes", "maybe"], strategy="margin", score_names=("margin", "bald"))
    pushed2 = push_to_argilla(PushToArgillaInput(run="cats", round=2), ctx)
    assert (pushed2.created, pushed2.updated, pushed2.suggestions) == (3, 0, 2)
    assert pushed2.warnings and "fit no answer" in pushed2.warnings[0]  # "maybe" is not a label
    props = {m["name"] for m in api.get(f"/api/v1/me/datasets/{pushed.dataset_id}/metadata-properties").json()["items"]}
    assert "score_bald" in props
    for ann in (ann1, ann2):
        ann.answer_queue(dataset_id, lambda r: ("yes", "submitted") if r["metadata"]["round"] == 2 else None)
    pulled2 = pull_from_argilla(PullFromArgillaInput(run="cats", round=2), ctx)
    assert (pulled2.new_events, pulled2.by_round) == (6, {"2": 6})
    assert len(read_jsonl(run.round_file("annotation", 2))) == 6
    assert len(read_jsonl(run.round_file("annotation", 1))) == 9  # round 1's file is as it was
    final = argilla_progress(run)
    assert final["rounds"]["2"]["done"] == 3 and final["totals"]["records"] == 7

    # Where the batches went is remembered, without the server's URL or key.
    dest = run.destinations()["argilla"]
    assert dest["dataset"] == "cats" and dest["workspace"] == "alloop" and set(dest["rounds"]) == {"1", "2"}
    for path in run.path.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="ignore")
            assert argilla_env.owner_key not in text and argilla_env.url not in text, path


@pytest.mark.parametrize(
    ("task_type", "labels", "prediction", "answer", "expected_label", "question"),
    [
        ("multi_select", ["red", "green", "blue"], '["red", "blue"]', ["green", "blue"], ["green", "blue"],
         "multi_label_selection"),
        ("ordinal_scale", ["never", "sometimes", "often"], "often", 2, "sometimes", "rating"),
        ("ordinal_scale", ["1", "2", "3", "4", "5"], "4", 5, "5", "rating"),
        ("magnitude", [], "12.5", " 3.25 ", 3.25, "text"),
        ("free_text", [], "a guess", "a longer answer", "a longer answer", "text"),
    ],
)
def test_task_types(
    argilla_env, ctx: ToolContext, annotators: dict[str, Annotator],
    task_type, labels, prediction, answer, expected_label, question,
) -> None:
    name = f"t-{task_type}-{len(labels)}"
    run = make_run(ctx.root, name, task_type=task_type, labels=labels, annotators_per_item=1, suggestions=True)
    select(run, 1, ["item-000"], predictions=[prediction])
    pushed = push_to_argilla(PushToArgillaInput(run=name, round=1, annotators=["ann1"]), ctx)
    assert pushed.question == question and pushed.suggestions == 1
    ann1 = annotators["ann1"]
    (record,) = ann1.queue(ann1.dataset_id(name))
    ann1.answer(record["id"], answer)
    pulled = pull_from_argilla(PullFromArgillaInput(run=name), ctx)
    assert pulled.new_events == 1 and not pulled.invalid
    (event,) = run.labels()
    assert event.label == expected_label


def test_magnitude_answer_that_is_no_number_is_reported_not_written(
    argilla_env, ctx: ToolContext, annotators: dict[str, Annotator]
) -> None:
    run = make_run(ctx.root, "sizes", task_type="magnitude", labels=[], annotators_per_item=1)
    select(run, 1, ["item-000", "item-001"], predictions=["1.0", "2.0"])
    push_to_argilla(PushToArgillaInput(run="sizes", round=1, annotators=["ann1"]), ctx)
    ann1 = annotators["ann1"]
    answers = {"item-000": ("about ten", "submitted"), "item-001": ("10", "submitted")}
    ann1.answer_queue(ann1.dataset_id("sizes"), lambda r: answers[r["external_id"]])
    pulled = pull_from_argilla(PullFromArgillaInput(run="sizes"), ctx)
    assert pulled.new_events == 1
    assert [(i["item_id"], i["value"]) for i in pulled.invalid] == [("item-000", "about ten")]
    assert [(e.item_id, e.label) for e in run.labels()] == [("item-001", 10.0)]
    # Fixed in Argilla, it comes in on the next pull.
    ann1.change(pulled.invalid[0]["response_id"], "11")
    assert pull_from_argilla(PullFromArgillaInput(run="sizes"), ctx).new_events == 1


def test_several_text_fields_and_no_url_in_logs(argilla_env, ctx: ToolContext, caplog) -> None:
    run = make_run(ctx.root, "fields", text_fields=["text", "source"], annotators_per_item=1)
    select(run, 1, ["item-001"], predictions=["yes"])
    with caplog.at_level(logging.DEBUG):
        pushed = push_to_argilla(PushToArgillaInput(run="fields", round=1), ctx)
        pull_from_argilla(PullFromArgillaInput(run="fields"), ctx)
    assert "records to Argilla dataset 'fields'" in caplog.text  # alloop logs what it did ...
    assert argilla_env.url not in caplog.text and argilla_env.owner_key not in caplog.text  # ... not where
    api = owner(argilla_env)
    (record,) = api.get(f"/api/v1/datasets/{pushed.dataset_id}/records").json()["items"]
    assert record["fields"] == {"text": "Sentence number 1 about cats.", "source": "doc1"}
    # The item id keys the record and, for owners, is its metadata; it is no field annotators read.
    assert record["external_id"] == record["metadata"]["item_id"] == "item-001"
    assert json.dumps(record).count("item-001") == 2
