"""The local backend's constrained answers and the default local model, end to end through llm_judge
on a tiny random-weight Llama built offline (fast): every answer inside the schema, its confidence
logged, a rationale bounded, and the installed model chosen, and said so, when nothing else is set."""

from __future__ import annotations

import json

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.errors import InputError
from alloop.tools.judge.answers import RATIONALE_TOKENS, SCORE_GRID
from alloop.tools.judge.backends import local_models
from alloop.tools.judge.backends.local_models import BundledModel
from alloop.tools.llm_judge import LlmJudgeInput, llm_judge

from .tiny_model import tiny_model_folder

LABELS = ("negative", "positive")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("models") / "tiny-llama")


def judge(ctx, **fields):
    return llm_judge(LlmJudgeInput(run="demo", use="evaluation", **fields), ctx)


def test_labels_are_chosen_among_the_schema_with_their_probabilities_logged(make_run, ctx, tiny):
    run = make_run()
    out = judge(ctx, backend="local", local_model=str(tiny), items=["h0", "h3", "h4"])
    assert out.counts == {"ok": 3} and out.judge_model == "local:tiny-llama"
    for row, shown in zip(run.judge_rows(0), out.judgments, strict=True):
        info = row["backend_info"]
        assert info["constrained"] is True and row["label"] in LABELS
        assert set(info["choice_probs"]) == set(LABELS) and sum(info["choice_probs"].values()) == pytest.approx(1, 1e-3)
        assert row["confidence"] == info["confidence"] == max(info["choice_probs"].values()) == shown.confidence
        assert info["choice_probs"][row["label"]] == row["confidence"]
        assert row["raw_answer"] == json.dumps({"label": row["label"]}) and row["output_tokens"] == 0
        calibration = info["calibration_logprobs"]  # the same for every item: an empty item's
        assert (
            set(calibration) == set(LABELS)
            and calibration == run.judge_rows(0)[0]["backend_info"]["calibration_logprobs"]
        )


def test_uncalibrated_labels_follow_the_raw_likelihood(make_run, ctx, tiny):
    run = make_run()
    judge(ctx, backend="local", local_model=str(tiny), items=["h0", "h3"], local_calibrated=False)
    for row in run.judge_rows(0):
        info = row["backend_info"]
        assert "calibration_logprobs" not in info
        assert row["label"] == max(info["choice_logprobs"], key=info["choice_logprobs"].get)


def test_scores_come_from_the_grid_without_a_word_of_rubric(make_run, ctx, tiny):
    run = make_run()
    out = judge(ctx, backend="local", local_model=str(tiny), kind="score", items=["h1", "h5"])
    assert out.counts == {"ok": 2}
    for row in run.judge_rows(0):
        assert row["score"] in SCORE_GRID and row["raw_answer"] == json.dumps({"score": row["score"]})
        assert len(row["backend_info"]["choice_probs"]) == len(SCORE_GRID)
        assert "calibration_logprobs" not in row["backend_info"]  # calibration is for labels


def test_a_rationale_is_generated_bounded_then_the_label_chosen_after_it(make_run, ctx, tiny):
    run = make_run()
    judge(ctx, backend="local", local_model=str(tiny), kind="rationale", items=["h2"], max_tokens=400)
    row = run.judge_rows(0)[0]
    answer = json.loads(row["raw_answer"])
    assert list(answer) == ["rationale", "label"] and answer["label"] in LABELS
    assert 1 <= row["output_tokens"] <= RATIONALE_TOKENS
    assert '"' not in answer["rationale"]  # generation stops where the JSON string closes
    assert row["status"] == ("ok" if answer["rationale"] else "out_of_schema")


def test_constrained_and_free_answers_are_cached_apart(make_run, ctx, tiny):
    make_run()
    first = judge(ctx, backend="local", local_model=str(tiny), items=["h0"])
    free = judge(ctx, backend="local", local_model=str(tiny), items=["h0"], local_constrained=False, max_tokens=16)
    raw = judge(ctx, backend="local", local_model=str(tiny), items=["h0"], local_calibrated=False)
    again = judge(ctx, backend="local", local_model=str(tiny), items=["h0"])
    assert (first.n_cached, free.n_cached, raw.n_cached, again.n_cached) == (0, 0, 0, 1)
    assert again.judgments[0].label == first.judgments[0].label


def test_with_nothing_configured_the_installed_model_answers_and_the_output_says_why(make_run, root, tiny, monkeypatch):
    bundled = BundledModel(
        alias="tiny", title="a tiny test model", install="-", installed=lambda: True, locate=lambda: tiny
    )
    monkeypatch.setattr(local_models, "BUNDLED", (bundled,))
    run = make_run()
    out = llm_judge(LlmJudgeInput(run="demo", use="evaluation", items=["h0"]), ToolContext(root=root))
    assert out.backend == "local" and out.judge_model == "local:tiny-llama" and out.counts == {"ok": 1}
    assert "'tiny' (a tiny test model) by default" in out.backend_reason
    assert "ANTHROPIC_API_KEY" in out.backend_reason  # and how to get a stronger judge
    assert run.judge_rows(0)[0]["judge_model"] == "local:tiny-llama"


def test_an_asked_for_backend_is_said_to_be_asked_for(make_run, ctx, tiny):
    make_run()
    out = judge(ctx, backend="local", local_model=str(tiny), items=["h0"])
    assert out.backend_reason == "backend 'local' as asked"


def test_with_nothing_configured_or_installed_the_error_says_what_to_set(make_run, ctx, monkeypatch):
    monkeypatch.setattr(local_models, "BUNDLED", ())
    make_run()
    with pytest.raises(InputError, match=r"no judge backend is available.*ANTHROPIC_API_KEY.*sampling.*local"):
        judge(ctx)
    with pytest.raises(InputError, match="needs a model"):
        judge(ctx, backend="local")
