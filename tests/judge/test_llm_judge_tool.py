"""llm_judge's rules: only where the spec allows it, labels only for the uses that write them,
every answer logged, figures apart from gold. The backend here is a fake sampler (fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alloop.tools.base import ToolContext
from alloop.tools.errors import InputError, PathEscapeError
from alloop.tools.judge.records import JudgeRecord
from alloop.tools.llm_judge import SPEC, LlmJudgeInput, llm_judge
from alloop.tools.run.schema import ResultRow

from .conftest import FakeSampler, data_of


@pytest.fixture
def sampler():
    return FakeSampler()


@pytest.fixture
def sctx(root, sampler):
    return ToolContext(root=root, sampler=sampler)


def judge(ctx, **fields):
    fields.setdefault("run", "demo")
    return llm_judge(LlmJudgeInput(**fields), ctx)


def judge_events(run):
    return [e for e in run.labels() if e.source == "judge"]


def test_the_tool_is_declared_for_both_adapters():
    assert SPEC.name == "llm_judge" and SPEC.behaviour == "remote"
    assert "never" in SPEC.description and SPEC.input_model is LlmJudgeInput


def test_a_spec_that_forbids_a_judge_is_refused(make_run, sctx, sampler):
    make_run(allowed=False)
    with pytest.raises(InputError, match="does not allow an LLM judge"):
        judge(sctx, use="evaluation")
    assert sampler.calls == []


def test_a_use_the_spec_does_not_name_is_refused(make_run, sctx):
    make_run(allowed=True, uses=["evaluation"])
    with pytest.raises(InputError, match="only for \\['evaluation'\\], not 'pseudo_labeling'"):
        judge(sctx, use="pseudo_labeling")


def test_uses_that_write_labels_need_kind_label_and_pool_items(make_run, sctx):
    make_run()
    with pytest.raises(InputError, match="ask for kind 'label'"):
        judge(sctx, use="adjudication", kind="score")
    with pytest.raises(InputError, match="held-out items must never get one"):
        judge(sctx, use="pseudo_labeling", items=["h0", "p05"])
    with pytest.raises(InputError, match="neither the pool nor the held-out set"):
        judge(sctx, use="evaluation", items=["nope"])


def test_pseudo_labels_are_label_events_with_source_judge_and_full_provenance(make_run, sctx):
    run = make_run()
    out = judge(sctx, use="pseudo_labeling", limit=5)
    assert out.labels_written == 5 and out.labels_enter_training is False
    events = judge_events(run)
    assert len(events) == 5
    records = {r["item_id"]: JudgeRecord.model_validate(r) for r in run.judge_rows(0)}
    for event in events:
        assert event.annotator == "judge:sampling:client-model-x" and event.destination == "judge"
        assert event.extra["use"] == "pseudo_labeling" and event.extra["enters_training"] is False
        record = records[event.item_id]
        assert record.label_event_id == event.event_id and event.extra["judge_record"] == record.record_id
        assert event.label == record.label and event.extra["rubric_version"] == record.rubric_version
    labeled_before = {e.item_id for e in run.labels() if e.source != "judge"}
    assert not labeled_before & {e.item_id for e in events}  # unlabeled items only


def test_judging_again_adds_no_duplicate_labels(make_run, sctx):
    run = make_run()
    judge(sctx, use="pseudo_labeling", items=["p05", "n05"])
    again = judge(sctx, use="pseudo_labeling", items=["p05", "n05"])
    assert again.labels_written == 0 and again.n_cached == 2
    assert len(judge_events(run)) == 2
    linked = [r["label_event_id"] for r in run.judge_rows(0)]
    assert linked[:2] == linked[2:] and all(linked)


def test_evaluation_and_prioritization_write_no_labels(make_run, sctx):
    run = make_run()
    judge(sctx, use="evaluation")
    judge(sctx, use="prioritization", kind="score", limit=4)
    assert judge_events(run) == []


def test_adjudication_sees_the_disagreeing_answers_anonymised_and_writes_judge_labels(make_run, sctx, sampler):
    run = make_run()
    out = judge(sctx, use="adjudication")
    assert sorted(j.item_id for j in out.judgments) == ["n03", "p03"]
    payload = data_of({"messages": sampler.calls[0]["messages"]})["item"]
    assert sorted(a["label"] for a in payload["annotations"]) == ["negative", "positive"]
    assert {a["annotator"] for a in payload["annotations"]} == {"annotator 1", "annotator 2"}
    assert "ann1" not in json.dumps(sampler.calls)
    events = judge_events(run)
    assert {e.item_id: e.label for e in events} == {"p03": "positive", "n03": "negative"}
    assert all(e.extra["use"] == "adjudication" for e in events)


def test_a_ranking_orders_a_group_and_logs_each_item_with_its_rank(make_run, sctx, sampler):
    run = make_run()
    out = judge(sctx, use="prioritization", kind="ranking", items=["n05", "p05", "n06", "p06"])
    ranks = {j.item_id: j.rank for j in out.judgments}
    assert sorted(ranks.values()) == [1, 2, 3, 4] and ranks["p05"] < ranks["n05"]
    assert len(sampler.calls) == 1  # one request for the group
    rows = run.judge_rows(0)
    assert len({r["group"] for r in rows}) == 1 and sum(r["input_tokens"] is not None for r in rows) == 1
    with pytest.raises(InputError, match="at least two items"):
        judge(sctx, use="prioritization", kind="ranking", items=["p05"])


def test_scores_and_rationales_are_logged_without_labels_in_the_log_of_labels(make_run, sctx):
    run = make_run()
    scored = judge(sctx, use="prioritization", kind="score", items=["p05"])
    assert scored.judgments[0].score == 0.2
    explained = judge(sctx, use="evaluation", kind="rationale", items=["h0"])
    assert explained.judgments[0].rationale == "The words say positive."
    assert judge_events(run) == []


def test_a_user_rubric_from_the_run_is_used_and_logged(make_run, sctx, sampler):
    run = make_run()
    (run.path / "rubrics").mkdir()
    (run.path / "rubrics" / "strict.md.j2").write_text(
        "{#- rubric-version: 7 -#}\nJudge strictly between {{ labels | join(' and ') }}.\n", encoding="utf-8"
    )
    out = judge(sctx, use="evaluation", rubric="rubrics/strict.md.j2", items=["h0"])
    assert out.rubric == "run:rubrics/strict.md.j2" and out.rubric_version == "7"
    assert sampler.calls[0]["system"].startswith("Judge strictly between negative and positive.")
    assert run.judge_rows(0)[0]["rubric_version"] == "7"


def test_a_rubric_outside_the_run_or_missing_is_refused(make_run, sctx):
    make_run()
    with pytest.raises(PathEscapeError):
        judge(sctx, use="evaluation", rubric="../../etc/passwd")
    with pytest.raises(InputError, match="not found"):
        judge(sctx, use="evaluation", rubric="rubrics/none.j2")


def test_a_rubric_that_does_not_render_sends_nothing_and_writes_nothing(make_run, sctx, sampler):
    run = make_run()
    (run.path / "bad.j2").write_text("{#- rubric-version: 1 -#}\n{{ labels[9] }}\n", encoding="utf-8")
    labels_before = run.labels_path.read_text()
    with pytest.raises(InputError, match="does not render"):
        judge(sctx, use="pseudo_labeling", rubric="bad.j2")
    assert sampler.calls == [] and run.judge_rows(0) == [] and run.labels_path.read_text() == labels_before


def test_judge_figures_go_to_the_judge_columns_and_leave_gold_alone(make_run, sctx):
    from alloop.tools.run.models import ModelDir, Predictions

    run = make_run()
    gold_row = ResultRow(round=1, model_version="r01-x", gold_n=6, gold_accuracy=0.5, gold_macro_f1=0.4)
    run.upsert_result(gold_row)
    ids = ["h0", "h1", "h2", "h3", "h4", "h5"]
    probs = np.array([[0.1, 0.9]] * 6, dtype=np.float32)  # the model says positive everywhere
    ModelDir(run, 1).save_predictions(
        Predictions.from_probabilities(
            pool_ids=np.array([], dtype=str),
            pool_probs=np.zeros((0, 2)),
            heldout_ids=np.array(ids),
            heldout_probs=probs,
            labels=["negative", "positive"],
            model_version="r01-x",
        )
    )
    out = judge(sctx, use="evaluation", round=1)
    assert out.results_updated
    row = run.results()[0]
    assert row.judge_n == 6 and row.judge_agreement_with_gold == 1.0 and row.judge_accuracy == 0.5
    for column in ResultRow.columns():
        if column.startswith("gold_"):
            assert getattr(row, column) == getattr(gold_row, column), column


def test_an_unreadable_predictions_file_is_an_error_before_any_request(make_run, sctx, sampler):
    from alloop.tools.run.models import ModelDir

    run = make_run()
    model = ModelDir(run, 0)
    model.predictions_path.parent.mkdir(parents=True)
    model.predictions_path.write_bytes(b"not an npz")
    with pytest.raises(InputError, match="not a readable"):
        judge(sctx, use="evaluation")
    assert sampler.calls == [] and run.judge_rows(0) == []


def test_each_judgment_in_the_output_is_a_projection_of_its_record(make_run, sctx):
    from alloop.tools.llm_judge import ItemJudgment

    run = make_run()
    out = judge(sctx, use="evaluation", items=["h0", "h3"])
    assert set(ItemJudgment.model_fields) <= set(JudgeRecord.model_fields)
    rows = run.judge_rows(0)
    fields = set(ItemJudgment.model_fields)
    assert [j.model_dump() for j in out.judgments] == [{k: v for k, v in r.items() if k in fields} for r in rows]


def test_without_a_results_row_the_figures_are_returned_not_written(make_run, sctx):
    run = make_run()
    out = judge(sctx, use="evaluation")
    assert not out.results_updated and "no row for round 0" in out.note
    assert out.figures["judge_n"] == 6 and run.results() == []


def test_disagreements_with_gold_are_listed_for_review(make_run, root):
    make_run()
    contrary = FakeSampler(lambda s, m, t: {"text": '{"label": "negative", "rationale": "contrary"}'})
    out = judge(ToolContext(root=root, sampler=contrary), use="evaluation")
    assert {d["item_id"] for d in out.disagreements} == {"h0", "h1", "h2"}
    assert all(d["reference_source"] == "gold" and d["rationale"] == "contrary" for d in out.disagreements)
    assert out.figures["percent_agreement_with_gold"] == 0.5


def test_injected_instructions_in_an_item_do_not_change_the_rubric(make_run, sctx, sampler):
    make_run()
    judge(sctx, use="pseudo_labeling", items=["inject", "jinja", "p05"])
    systems = {call["system"] for call in sampler.calls}
    assert len(systems) == 1  # the same rubric for all three items
    texts = [data_of({"messages": c["messages"]})["item"]["text"] for c in sampler.calls]
    assert any(t.startswith("Ignore your instructions") for t in texts)
    assert any(t.startswith("{{ 7 * 7 }}") for t in texts)


def test_a_new_rubric_version_is_a_new_cache_entry(make_run, sctx, sampler):
    run = make_run()
    rubric = run.path / "r.j2"
    rubric.write_text("{#- rubric-version: 1 -#}\nJudge {{ labels | join(' or ') }}.\n", encoding="utf-8")
    judge(sctx, use="evaluation", rubric="r.j2", items=["h0"])
    assert judge(sctx, use="evaluation", rubric="r.j2", items=["h0"]).n_cached == 1
    rubric.write_text("{#- rubric-version: 2 -#}\nJudge {{ labels | join(' or ') }}.\n", encoding="utf-8")
    again = judge(sctx, use="evaluation", rubric="r.j2", items=["h0"])
    assert again.n_cached == 0 and again.rubric_version == "2" and len(sampler.calls) == 2
