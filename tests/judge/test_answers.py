"""The constrained answer space: every answer it offers is one the strict parser accepts, and no
scored stem is a prefix of another (or the shorter would win by stopping early)."""

from __future__ import annotations

import pytest

from alloop.tools.judge.answers import SCORE_GRID, answer_space
from alloop.tools.judge.parsing import parse_answer
from alloop.tools.run.schema import TaskSpec

CATEGORICAL = TaskSpec(run="demo", task_type="categorical", labels=["sport", "sports", "tech"])
ORDINAL = TaskSpec(run="demo", task_type="ordinal_scale", labels=["1", "2", "10"])
MULTI = TaskSpec(run="demo", task_type="multi_select", labels=["a", "b"])


@pytest.mark.parametrize("spec", [CATEGORICAL, ORDINAL])
@pytest.mark.parametrize("kind", ["label", "score", "rationale"])
def test_every_offered_answer_parses_ok_into_the_value_it_stands_for(spec, kind):
    space = answer_space(spec, kind)
    answers = space.answers("it says so")
    assert len(answers) == len(space.values)
    for value, answer in zip(space.values, answers, strict=True):
        parsed = parse_answer(answer, kind, spec)
        assert parsed.status == "ok", (answer, parsed.error)
        assert (parsed.score if kind == "score" else parsed.label) == value
        if kind == "rationale":
            assert parsed.rationale == "it says so"


@pytest.mark.parametrize("spec", [CATEGORICAL, ORDINAL])
@pytest.mark.parametrize("kind", ["label", "score"])
def test_no_stem_is_a_prefix_of_another(spec, kind):
    stems = answer_space(spec, kind).stems()
    assert all(not b.startswith(a) for a in stems for b in stems if a != b)


def test_scores_lie_on_a_grid_of_tenths_and_labels_come_from_the_spec():
    assert answer_space(CATEGORICAL, "score").values == SCORE_GRID
    assert SCORE_GRID[0] == 0.0 and SCORE_GRID[-1] == 1.0 and len(SCORE_GRID) == 11
    assert answer_space(CATEGORICAL, "label").values == ("sport", "sports", "tech")
    assert answer_space(CATEGORICAL, "rationale").opening() == '{"rationale": "'


def test_where_answers_are_not_finite_there_is_no_space():
    assert answer_space(MULTI, "label") is None
    assert answer_space(CATEGORICAL, "ranking") is None
    assert answer_space(MULTI, "score") is not None  # a score is a score, whatever the labels


def test_only_labels_chosen_on_their_own_are_calibrated():
    assert answer_space(CATEGORICAL, "label").calibrates
    assert not answer_space(CATEGORICAL, "score").calibrates
    assert not answer_space(CATEGORICAL, "rationale").calibrates
