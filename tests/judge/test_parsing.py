"""Strict parsing: a reply becomes a label only when it is exactly a valid answer."""

from __future__ import annotations

import pytest

from alloop.tools.judge.parsing import parse_answer
from alloop.tools.run.schema import TaskSpec

BINARY = TaskSpec(run="t", task_type="binary", labels=["negative", "positive"])
MULTI = TaskSpec(run="t", task_type="multi_select", labels=["a", "b", "c"])
MAGNITUDE = TaskSpec(run="t", task_type="magnitude")


def test_a_valid_label_parses():
    parsed = parse_answer('{"label": "positive", "rationale": "warm words"}', "label", BINARY)
    assert (parsed.status, parsed.label, parsed.rationale) == ("ok", "positive", "warm words")


def test_a_reply_wrapped_whole_in_a_code_fence_is_read():
    parsed = parse_answer('```json\n{"label": "negative"}\n```', "label", BINARY)
    assert (parsed.status, parsed.label) == ("ok", "negative")


@pytest.mark.parametrize(
    "reply",
    [
        "positive",
        "The label is positive.",
        'Sure! {"label": "positive"}',
        '{"label": "positive"} I hope that helps',
        '["positive"]',
        "",
        '{"label": "positive"',
    ],
)
def test_anything_but_one_json_object_is_unparseable_and_never_guessed(reply):
    parsed = parse_answer(reply, "label", BINARY)
    assert parsed.status == "unparseable"
    assert parsed.label is None
    assert parsed.error


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ('{"label": "Positive"}', "not in the schema"),
        ('{"label": "maybe"}', "not in the schema"),
        ('{"label": 1}', "must be a string"),
        ('{"rationale": "no label"}', "missing key"),
        ('{"label": "positive", "confidence": 0.9}', "unexpected key"),
        ('{"refusal": ""}', "refusal"),
    ],
)
def test_json_outside_the_schema_is_out_of_schema(reply, why):
    parsed = parse_answer(reply, "label", BINARY)
    assert parsed.status == "out_of_schema"
    assert parsed.label is None
    assert why in parsed.error


def test_a_refusal_is_recorded_as_such():
    parsed = parse_answer('{"refusal": "the item is empty"}', "label", BINARY)
    assert (parsed.status, parsed.refusal, parsed.label) == ("refused", "the item is empty", None)


def test_scores_must_lie_in_the_unit_interval_and_not_be_booleans():
    assert parse_answer('{"score": 0.25}', "score", BINARY).score == 0.25
    assert parse_answer('{"score": 1.5}', "score", BINARY).status == "out_of_schema"
    assert parse_answer('{"score": true}', "score", BINARY).status == "out_of_schema"
    assert parse_answer('{"score": "0.5"}', "score", BINARY).status == "out_of_schema"


def test_a_ranking_must_name_every_item_exactly_once():
    ids = ["a", "b", "c"]
    assert parse_answer('{"ranking": ["c", "a", "b"]}', "ranking", BINARY, ids).ranking == ["c", "a", "b"]
    for bad in ('{"ranking": ["c", "a"]}', '{"ranking": ["c", "a", "a"]}', '{"ranking": ["c", "a", "b", "x"]}'):
        assert parse_answer(bad, "ranking", BINARY, ids).status == "out_of_schema"


def test_a_rationale_needs_text_and_may_carry_a_label():
    parsed = parse_answer('{"rationale": "It says great.", "label": "positive"}', "rationale", BINARY)
    assert (parsed.status, parsed.label) == ("ok", "positive")
    assert parse_answer('{"rationale": "  "}', "rationale", BINARY).status == "out_of_schema"


def test_multi_select_labels_are_a_list_from_the_schema():
    assert parse_answer('{"label": ["a", "c"]}', "label", MULTI).label == ["a", "c"]
    assert parse_answer('{"label": []}', "label", MULTI).label == []
    assert parse_answer('{"label": "a"}', "label", MULTI).status == "out_of_schema"
    assert parse_answer('{"label": ["a", "z"]}', "label", MULTI).status == "out_of_schema"
    assert parse_answer('{"label": ["a", "a"]}', "label", MULTI).status == "out_of_schema"


def test_magnitudes_are_finite_numbers():
    assert parse_answer('{"label": 3.5}', "label", MAGNITUDE).label == 3.5
    assert parse_answer('{"label": "3.5"}', "label", MAGNITUDE).status == "out_of_schema"
    assert parse_answer('{"label": NaN}', "label", MAGNITUDE).status == "out_of_schema"


def test_the_spec_names_exactly_the_registered_judge_backends():
    from typing import get_args

    from alloop.tools.judge.backends import BACKENDS
    from alloop.tools.run.schema import JudgeBackendName

    assert set(BACKENDS) == set(get_args(JudgeBackendName))
