"""llm_judge through MCP sampling: the client's own model judges, in both protocol eras."""

from __future__ import annotations

import json

import mcp_types as types
import pytest
from mcp import Client

from alloop.app import create_server
from alloop.tools.base import ToolContext
from alloop.tools.interview_spec import InterviewInput, interview_spec

MODES = ["auto", "legacy"]


@pytest.fixture
def judged_run(root, bbc_slice, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ALLOOP_JUDGE_LOCAL_MODEL", raising=False)
    ctx = ToolContext(root=root, inputs_anywhere=True)
    interview_spec(
        InterviewInput(
            run="judged",
            pool=str(bbc_slice["pool"]),
            heldout=str(bbc_slice["heldout"]),
            task_type="categorical",
            labels=["business", "entertainment", "politics", "sports", "tech"],
            judge_uses=["evaluation"],
        ),
        ctx,
    )
    return root


def topic_of(text: str) -> str:
    return "sports" if "cup" in text.lower() else "business"


@pytest.mark.parametrize("mode", MODES)
async def test_the_clients_model_judges_and_is_logged(judged_run, mode):
    asked: list[types.CreateMessageRequestParams] = []

    async def sample(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append(params)
        text = params.messages[-1].content.text
        return types.CreateMessageResult(
            role="assistant",
            model="client-model-1",
            stop_reason="endTurn",
            content=types.TextContent(type="text", text=json.dumps({"label": topic_of(text)})),
        )

    async with Client(create_server(judged_run.path), mode=mode, sampling_callback=sample) as client:
        result = await client.call_tool("llm_judge", {"run": "judged", "use": "evaluation", "limit": 4})
        batched = client.protocol_version >= "2026-07-28"  # requests batched up front, else asked mid-call
    assert batched == (mode == "auto")
    assert not result.is_error, result.content[0].text
    out = result.structured_content
    assert out["backend"] == "sampling" and len(asked) == 4
    assert all(p.system_prompt for p in asked)  # the rubric rides in the system prompt, the item in the data
    rows = [json.loads(line) for line in (judged_run.path / "judged" / "judge_round_00.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {r["judge_model"] for r in rows} == {"client-model-1"}
    assert all(r["use"] == "evaluation" and r["rubric_version"] and r["prompt_hash"] for r in rows)


@pytest.mark.parametrize("mode", MODES)
async def test_without_sampling_key_or_local_model_the_judge_says_what_is_missing(judged_run, mode, monkeypatch):
    from alloop.tools.judge.backends import local_models

    monkeypatch.setattr(local_models, "BUNDLED", ())  # no bundled model installed either
    async with Client(create_server(judged_run.path), mode=mode) as client:
        result = await client.call_tool("llm_judge", {"run": "judged", "use": "evaluation", "limit": 2})
    assert result.is_error and "no judge backend is available" in result.content[0].text


async def test_a_use_the_spec_does_not_allow_is_refused(judged_run):
    async def never(context, params):
        raise AssertionError("no sampling should happen")

    async with Client(create_server(judged_run.path), sampling_callback=never) as client:
        result = await client.call_tool("llm_judge", {"run": "judged", "use": "pseudo_labeling"})
    assert result.is_error and "pseudo_labeling" in result.content[0].text
