"""The ledger returns what a judging call adds to labels.jsonl; it never edits the records it reads."""

from __future__ import annotations

from alloop.tools.judge.ledger import label_events, linked
from alloop.tools.judge.records import JudgeRecord

from .conftest import make_spec


def record(item_id: str, **fields) -> JudgeRecord:
    base = {
        "round": 0,
        "item_id": item_id,
        "use": "pseudo_labeling",
        "kind": "label",
        "status": "ok",
        "label": "positive",
        "backend": "sampling",
        "judge_model": "m",
        "rubric": "builtin:binary",
        "rubric_version": "1",
        "rubric_hash": "r",
        "prompt_hash": f"prompt-{item_id}",
        "answer_format": "json-1",
    }
    return JudgeRecord(**{**base, **fields})


def test_label_events_link_records_without_changing_them():
    records = [record("p05"), record("h0", item_set="heldout"), record("n05", status="refused", label=None)]
    before = [r.model_copy() for r in records]
    fresh, ids = label_events(make_spec(), records, "pseudo_labeling", [])
    assert records == before  # nothing set on the inputs
    assert [e.item_id for e in fresh] == ["p05"] and ids == {records[0].record_id: fresh[0].event_id}
    assert [r.label_event_id for r in linked(records, ids)] == [fresh[0].event_id, None, None]
    assert records[0].label_event_id is None


def test_a_judgment_recorded_before_links_to_its_earlier_event():
    first, _ = label_events(make_spec(), [record("p05")], "pseudo_labeling", [])
    again = record("p05")
    fresh, ids = label_events(make_spec(), [again], "pseudo_labeling", first)
    assert fresh == [] and ids == {again.record_id: first[0].event_id}


def test_uses_that_write_no_labels_give_no_events():
    assert label_events(make_spec(), [record("p05", use="evaluation")], "evaluation", []) == ([], {})
