"""The Argilla mapping without a server: settings from spec.json, records, answers back, progress."""

from __future__ import annotations

import pytest

from alloop.tools.argilla import (
    answer_label,
    dataset_plan,
    events_from_records,
    mismatches,
    new_events,
    progress_from_records,
    question_plan,
    record_payloads,
    server_time,
    suggestion_value,
)
from alloop.tools.errors import InputError
from alloop.tools.run.schema import SelectionRow, TaskSpec


def spec(task_type: str, labels: list[str] | None = None, **more) -> TaskSpec:
    return TaskSpec(run="r", task_type=task_type, labels=labels or [], **more)


@pytest.mark.parametrize(
    ("task_type", "labels", "kind", "options"),
    [
        ("binary", ["no", "yes"], "label_selection", ("no", "yes")),
        ("categorical", ["a", "b", "c"], "label_selection", ("a", "b", "c")),
        ("forced_choice", ["left", "right"], "label_selection", ("left", "right")),
        ("multi_select", ["x", "y"], "multi_label_selection", ("x", "y")),
        ("ordinal_scale", ["1", "2", "3", "4", "5"], "rating", (1, 2, 3, 4, 5)),
        ("ordinal_scale", ["0", "5", "10"], "rating", (0, 5, 10)),
        ("ordinal_scale", ["low", "mid", "high"], "rating", (1, 2, 3)),
        ("magnitude", [], "text", ()),
        ("free_text", [], "text", ()),
        ("cloze", [], "text", ()),
    ],
)
def test_question_fits_task_type(task_type, labels, kind, options) -> None:
    plan = question_plan(spec(task_type, labels))
    assert (plan.kind, plan.options) == (kind, options)


def test_words_on_a_rating_scale_are_explained_and_mapped_back() -> None:
    plan = question_plan(spec("ordinal_scale", ["never", "sometimes", "often"]))
    assert plan.description == "1 = never; 2 = sometimes; 3 = often"
    assert answer_label(plan, ["never", "sometimes", "often"], 3) == "often"
    assert suggestion_value(plan, "sometimes") == 2


def test_a_scale_too_long_for_rating_becomes_ordered_labels() -> None:
    labels = [f"p{i}" for i in range(12)]
    assert question_plan(spec("ordinal_scale", labels)).kind == "label_selection"


def test_plan_fields_metadata_guidelines_overlap() -> None:
    plan = dataset_plan(
        spec("binary", ["no", "yes"], text_fields=["Title", "body"], guidelines="  Read it.  ", annotators_per_item=3),
        score_names=["entropy", "BALD score"],
    )
    assert [(f.name, f.title, f.source) for f in plan.fields] == [("title", "Title", "Title"), ("body", "body", "body")]
    names = [m[0] for m in plan.metadata]
    assert names[:8] == ["item_id", "round", "rank", "strategy", "reason", "prediction", "confidence", "model_version"]
    assert names[8:] == ["score_bald_score", "score_entropy"]
    assert plan.guidelines == "Read it." and plan.min_submitted == 3
    assert dict((m[0], m[2]) for m in plan.metadata)["round"] is True  # annotators may filter by round
    assert dict((m[0], m[2]) for m in plan.metadata)["prediction"] is False  # the model's numbers are hidden
    assert dict((m[0], m[2]) for m in plan.metadata)["item_id"] is False  # owners see alloop's id, annotators not


def test_empty_guidelines_get_a_default() -> None:
    assert "Labels: no, yes." in dataset_plan(spec("binary", ["no", "yes"])).guidelines


def test_clashing_field_names_are_refused() -> None:
    with pytest.raises(InputError, match="clashes"):
        dataset_plan(spec("binary", ["no", "yes"], text_fields=["Text", "text"]))


def test_mismatches_name_what_changed() -> None:
    plan = dataset_plan(spec("categorical", ["a", "b", "c"]))
    two = [{"value": "a"}, {"value": "b"}]
    questions = [{"name": "label", "settings": {"type": "label_selection", "options": two}}]
    fields = [{"name": "text"}]
    (problem,) = mismatches(plan, questions, fields)
    assert "offers ['a', 'b']" in problem and "needs ['a', 'b', 'c']" in problem
    rating = [{"name": "label", "settings": {"type": "rating", "options": [{"value": 1}, {"value": 2}]}}]
    assert "is a rating question" in mismatches(plan, rating, fields)[0]
    assert "lacks the field(s) ['text']" in mismatches(plan, questions[:0], [])[1]
    ok = [{"name": "label", "settings": {"type": "label_selection", "options": [{"value": v} for v in "abc"]}}]
    assert mismatches(plan, ok, fields) == []


def row(item_id: str, rank: int, prediction, confidence=0.7, **more) -> SelectionRow:
    return SelectionRow(
        round=2,
        rank=rank,
        item_id=item_id,
        strategy="margin",
        reason="small margin",
        prediction=prediction,
        confidence=confidence,
        model_version="round01 logistic/v1",
        scores={"margin": 0.1},
        **more,
    )


def test_record_payloads_carry_selection_and_suggestion() -> None:
    plan = dataset_plan(spec("binary", ["no", "yes"]), ["margin"])
    rows = [row("a", 1, "yes"), row("b", 2, "perhaps"), row("c", 3, None, confidence=1.7)]
    items = [{"id": "a", "text": "A"}, {"id": "b", "text": None}, {"id": "c", "text": 3}]
    payloads, warnings = record_payloads(plan, rows, items, suggest=True)
    first = payloads[0]
    assert first["id"] == "a" and first["fields"] == {"text": "A"}
    assert first["metadata"] == {
        "item_id": "a",
        "round": 2,
        "rank": 1,
        "strategy": "margin",
        "reason": "small margin",
        "prediction": "yes",
        "confidence": 0.7,
        "model_version": "round01 logistic/v1",
        "score_margin": 0.1,
    }
    assert first["suggestion"] == {"value": "yes", "score": 0.7, "agent": "round01 logistic/v1"}
    assert payloads[1]["suggestion"] is None and payloads[1]["fields"] == {"text": ""}
    assert payloads[2]["suggestion"] is None and payloads[2]["fields"] == {"text": "3"}
    assert warnings == ["1 prediction(s) fit no answer of the question and were not suggested (items ['b'])"]


def test_no_suggestion_unless_the_spec_asks_for_one() -> None:
    """The batch is what the model is least sure of: by default annotators see no guess of it."""
    plan = dataset_plan(spec("binary", ["no", "yes"]), ["margin"])
    payloads, warnings = record_payloads(plan, [row("a", 1, "yes"), row("b", 2, "perhaps")], [{"text": "A"}] * 2)
    assert [p["suggestion"] for p in payloads] == [None, None] and warnings == []
    assert payloads[0]["metadata"]["prediction"] == "yes"  # still there for owners, hidden from annotators
    assert "suggestion" not in plan.guidelines


def test_multi_select_suggestion_has_a_score_per_label() -> None:
    plan = dataset_plan(spec("multi_select", ["x", "y", "z"]))
    payloads, _ = record_payloads(plan, [row("a", 1, "x|z")], [{"text": "t"}], suggest=True)
    assert payloads[0]["suggestion"]["value"] == ["x", "z"]
    assert payloads[0]["suggestion"]["score"] == [0.7, 0.7]
    assert suggestion_value(plan.question, '["y"]') == ["y"]
    assert suggestion_value(plan.question, "y") == ["y"]
    assert suggestion_value(plan.question, "w") is None


def test_magnitude_answers_must_be_numbers() -> None:
    plan = question_plan(spec("magnitude"))
    assert answer_label(plan, [], "1e3") == 1000.0
    assert answer_label(plan, [], " −2.5 ") == -2.5
    for bad in ("ten", "nan", "", None):
        with pytest.raises(ValueError):
            answer_label(plan, [], bad)
    assert suggestion_value(plan, "12.0") == "12"


def response(rid: str, user: str, status: str, value=None, when="2026-11-23T01:33:01.567515") -> dict:
    values = None if value is None else {"label": {"value": value}}
    return {"id": rid, "user_id": user, "status": status, "values": values, "updated_at": when}


RECORDS = [
    {
        "id": "rec-a",
        "external_id": "a",
        "status": "completed",
        "metadata": {"round": 1},
        "responses": [response("r1", "u1", "submitted", "yes"), response("r2", "u2", "submitted", "no")],
    },
    {
        "id": "rec-b",
        "external_id": "b",
        "status": "pending",
        "metadata": {"round": 1},
        "responses": [response("r3", "u1", "discarded"), response("r4", "u2", "draft", "yes")],
    },
    {
        "id": "rec-c",
        "external_id": "c",
        "status": "pending",
        "metadata": {},
        "responses": [response("r5", "u1", "submitted", "maybe")],
    },
    {"id": "rec-d", "external_id": "d", "status": "pending", "metadata": {"round": 2}, "responses": []},
]
USERS = {"u1": "ann1", "u2": "ann2"}


def test_events_from_records() -> None:
    plan = dataset_plan(spec("binary", ["no", "yes"], annotators_per_item=2))
    batch = events_from_records(plan, RECORDS, USERS, {"a", "b", "c", "d"}, {"c": 3}, "ds", "ws")
    got = [(e.item_id, e.annotator, e.status, e.label, e.round) for e in batch.events]
    assert got == [
        ("a", "ann1", "submitted", "yes", 1),
        ("a", "ann2", "submitted", "no", 1),
        ("b", "ann1", "discarded", None, 1),
    ]
    first = batch.events[0]
    assert first.source == "human" and first.destination == "argilla"
    assert first.external_id == "r1@2026-11-23T01:33:01.567515" and first.time == "2026-11-23T01:33:01+00:00"
    assert first.extra["argilla_record_id"] == "rec-a" and first.extra["argilla_dataset"] == "ds"
    assert batch.drafts == 1
    assert [(i["item_id"], i["value"]) for i in batch.invalid] == [("c", "maybe")]
    assert batch.unknown == []


def test_unknown_items_are_set_apart() -> None:
    plan = dataset_plan(spec("binary", ["no", "yes"]))
    batch = events_from_records(plan, RECORDS, USERS, {"b"}, {}, "ds", "ws")
    assert [u["item_id"] for u in batch.unknown] == ["a", "c"]
    assert [e.item_id for e in batch.events] == ["b"]


def test_a_second_pull_adds_nothing_and_a_change_supersedes() -> None:
    plan = dataset_plan(spec("binary", ["no", "yes"]))
    first = events_from_records(plan, RECORDS[:2], USERS, {"a", "b"}, {}, "ds", "ws").events
    fresh, already = new_events(first, [])
    assert (len(fresh), already) == (3, 0)
    again, already = new_events(events_from_records(plan, RECORDS[:2], USERS, {"a", "b"}, {}, "ds", "ws").events, fresh)
    assert (again, already) == ([], 3)
    resaved = [{**RECORDS[0], "responses": [response("r1", "u1", "submitted", "yes", when="2026-11-24T00:00:00")]}]
    same, already = new_events(events_from_records(plan, resaved, USERS, {"a"}, {}, "ds", "ws").events, fresh)
    assert (same, already) == ([], 1)  # saved again with the same answer: nothing new
    changed = [{**RECORDS[0], "responses": [response("r1", "u1", "submitted", "no", when="2026-11-24T00:00:00")]}]
    (correction,), _ = new_events(events_from_records(plan, changed, USERS, {"a"}, {}, "ds", "ws").events, fresh)
    assert correction.label == "no" and correction.supersedes == fresh[0].event_id


def test_progress_per_round_and_annotator() -> None:
    summary = progress_from_records(RECORDS, USERS, 2, annotators=["ann1", "ann2", "ann3"], item_rounds={"c": 1})
    r1 = summary["rounds"]["1"]
    counts = [r1[k] for k in ("records", "done", "pending", "submitted", "discarded", "drafts")]
    assert counts == [3, 1, 2, 3, 1, 1]
    assert r1["per_annotator"]["ann1"] == {"submitted": 2, "discarded": 1, "draft": 0, "to_do": 0}
    assert r1["per_annotator"]["ann2"] == {"submitted": 1, "discarded": 0, "draft": 1, "to_do": 2}
    assert r1["per_annotator"]["ann3"]["to_do"] == 2
    assert r1["not_pulled"] == 4
    assert summary["rounds"]["2"]["pending"] == 1 and summary["totals"]["records"] == 4


def test_server_time_is_utc_iso() -> None:
    assert server_time("2026-01-02T03:04:05.678") == "2026-01-02T03:04:05+00:00"
    assert server_time("2026-01-02T03:04:05+02:00") == "2026-01-02T01:04:05+00:00"


def test_answers_the_spec_refuses_are_listed_not_pulled() -> None:
    """A cloze answer for a blank the item lacks, or a non-positive magnitude on a log scale, never becomes a label."""
    from alloop.tools.run.labels import label_problem

    cloze = spec("cloze")
    plan = dataset_plan(cloze)
    texts = {"a": "The ___ sat on the mat.", "b": "The ___ sat on the ___."}
    records = [
        {"id": "rec-a", "external_id": "a", "metadata": {"round": 1},
         "responses": [response("r1", "u1", "submitted", "cat | hat")]},
        {"id": "rec-b", "external_id": "b", "metadata": {"round": 1},
         "responses": [response("r2", "u1", "submitted", "cat | mat")]},
    ]  # fmt: skip
    batch = events_from_records(
        plan,
        records,
        USERS,
        {"a", "b"},
        {},
        "ds",
        "ws",
        problem=lambda item, label: label_problem(cloze, label, texts[item]),
    )
    assert [e.item_id for e in batch.events] == ["b"]
    (refused,) = batch.invalid
    assert refused["item_id"] == "a" and "blank" in refused["why"]

    lognormal = spec("magnitude", model={"head": "lognormal"})
    negative = [
        {
            "id": "rec-a",
            "external_id": "a",
            "metadata": {"round": 1},
            "responses": [response("r1", "u1", "submitted", "-3")],
        }
    ]
    batch = events_from_records(
        dataset_plan(lognormal),
        negative,
        USERS,
        {"a"},
        {},
        "ds",
        "ws",
        problem=lambda _, label: label_problem(lognormal, label),
    )
    assert batch.events == [] and "positive" in batch.invalid[0]["why"]
