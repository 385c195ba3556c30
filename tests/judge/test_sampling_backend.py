"""The `sampling` backend through a fake sampler with the documented signature.

The MCP server sets ToolContext.sampler when its client offers sampling; here a plain function
stands in for it (an end-to-end test through the MCP SDK's client lives with the server).
"""

from __future__ import annotations

import threading

import pytest

from alloop.tools.base import ToolContext
from alloop.tools.errors import InputError
from alloop.tools.judge.backends import BackendError, TransientBackendError
from alloop.tools.llm_judge import LlmJudgeInput, llm_judge

from .conftest import FakeSampler


def sampling_ctx(root, sampler) -> ToolContext:
    return ToolContext(root=root, sampler=sampler)


def test_the_client_model_labels_through_the_sampler(root, make_run):
    run = make_run()
    sampler = FakeSampler()
    out = llm_judge(LlmJudgeInput(run="demo", use="evaluation", max_tokens=64), sampling_ctx(root, sampler))
    assert out.backend == "sampling" and out.judge_model == "client-model-x"
    assert out.counts == {"ok": 6} and out.cost_usd is None
    assert out.figures["judge_agreement_with_gold"] == 1.0
    call = sampler.calls[0]
    assert call["max_tokens"] == 64 and call["system"].startswith("# Rubric: binary")
    assert [m["role"] for m in call["messages"]] == ["user"]
    row = run.judge_rows(0)[0]
    assert row["backend"] == "sampling" and row["input_tokens"] == 120 and row["cost_usd"] is None


def test_sampling_is_chosen_without_a_key_when_the_client_offers_it(root, make_run):
    make_run()
    out = llm_judge(LlmJudgeInput(run="demo", use="evaluation", items=["h0"]), sampling_ctx(root, FakeSampler()))
    assert out.backend == "sampling"


def test_asking_for_sampling_without_a_client_that_offers_it_is_a_clear_error(root, make_run):
    make_run()
    with pytest.raises(InputError, match=r"sampling.*MCP client"):
        llm_judge(LlmJudgeInput(run="demo", use="evaluation", backend="sampling"), ToolContext(root=root))


def test_a_declined_sampling_request_is_recorded_as_an_error_not_a_label(root, make_run):
    make_run()

    def decline(system, messages, max_tokens):
        raise BackendError("the user declined the sampling request")

    out = llm_judge(LlmJudgeInput(run="demo", use="evaluation", items=["h0"]), sampling_ctx(root, FakeSampler(decline)))
    assert out.counts == {"error": 1} and "declined" in out.judgments[0].error


def test_a_transient_sampling_failure_is_retried(root, make_run):
    make_run()
    failures = iter([TransientBackendError("busy"), None])

    def flaky(system, messages, max_tokens):
        failure = next(failures)
        if failure:
            raise failure
        return {"text": '{"label": "positive"}'}

    out = llm_judge(
        LlmJudgeInput(run="demo", use="evaluation", items=["h0"], backoff_s=0.01),
        sampling_ctx(root, FakeSampler(flaky)),
    )
    assert out.counts == {"ok": 1}
    assert out.judge_model == "mcp-client"  # the client named no model


def test_a_client_that_never_answers_times_out(root, make_run):
    make_run()
    release = threading.Event()

    def hang(system, messages, max_tokens):
        release.wait(5)
        return {"text": '{"label": "positive"}'}

    try:
        out = llm_judge(
            LlmJudgeInput(run="demo", use="evaluation", items=["h0"], timeout_s=0.2, max_retries=0),
            sampling_ctx(root, FakeSampler(hang)),
        )
    finally:
        release.set()
    assert out.counts == {"error": 1} and "did not answer" in out.judgments[0].error


def test_a_sampler_returning_the_wrong_shape_is_an_error(root, make_run):
    make_run()
    out = llm_judge(
        LlmJudgeInput(run="demo", use="evaluation", items=["h0"]),
        sampling_ctx(root, FakeSampler(lambda s, m, t: "positive")),
    )
    assert out.counts == {"error": 1} and "not a dict" in out.judgments[0].error


def test_requests_can_be_gathered_up_front_and_answered_by_key(root, make_run):
    """The two-phase flow for protocols that batch client requests: plan, ask all, then judge."""
    from alloop.tools.judge.engine import answers_sampler
    from alloop.tools.judge.plan import sampling_requests

    run = make_run()
    args = LlmJudgeInput(run="demo", use="evaluation", items=["h0", "h3"])
    planned = sampling_requests(args, sampling_ctx(root, FakeSampler(lambda *a: pytest.fail("not to be called"))))
    assert [r.item_ids for r in planned] == [["h0"], ["h3"]]
    assert run.judge_rows(0) == []  # planning writes nothing
    client = FakeSampler()
    answers = {r.key: client(r.system, r.messages, r.max_tokens) for r in planned}
    out = llm_judge(args, sampling_ctx(root, answers_sampler(answers)))
    assert out.counts == {"ok": 2}
    assert sampling_requests(args, sampling_ctx(root, client)) == []  # all cached now


def test_an_answer_missing_from_the_gathered_ones_is_recorded_as_an_error(root, make_run):
    from alloop.tools.judge.engine import answers_sampler

    make_run()
    out = llm_judge(LlmJudgeInput(run="demo", use="evaluation", items=["h0"]), sampling_ctx(root, answers_sampler({})))
    assert out.counts == {"error": 1} and "no answer" in out.judgments[0].error


def test_the_review_prompt_renders_for_a_round():
    from alloop.tools.judge import review_disagreements_prompt

    text = review_disagreements_prompt("demo", 3)
    assert text.startswith("# Review the LLM judge's disagreements in run `demo`, round 3")
    assert "judge_round_03.jsonl" in text and "never" in text
    assert "judge_round_XX.jsonl" in review_disagreements_prompt("demo")


async def test_a_sampler_can_call_back_into_the_servers_event_loop(root, make_run):
    """How the server wires it: the tool runs in a worker thread, the judge's own threads call the
    sampler, and the sampler runs the async client request on the loop through a captured token."""
    import anyio
    import anyio.from_thread
    import anyio.lowlevel
    import anyio.to_thread

    make_run()
    token = anyio.lowlevel.current_token()
    client = FakeSampler()

    async def create_message(system, messages, max_tokens):  # stands in for the session's request
        await anyio.sleep(0)
        return client(system, messages, max_tokens)

    def sampler(system, messages, max_tokens):
        return anyio.from_thread.run(create_message, system, messages, max_tokens, token=token)

    args = LlmJudgeInput(run="demo", use="evaluation", concurrency=3)
    out = await anyio.to_thread.run_sync(llm_judge, args, sampling_ctx(root, sampler))
    assert out.counts == {"ok": 6} and len(client.calls) == 6
