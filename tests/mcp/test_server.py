"""The MCP server through the SDK's own client: in memory (both protocol eras) and over stdio."""

from __future__ import annotations

import json
import os
import shutil
import sys

import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters

from alloop.app import MCP_INPUTS, create_server
from alloop.tools.registry import TOOLS

MODES = ["auto", "legacy"]
CORE_TOOLS = {
    "status",
    "interview_spec",
    "seed_set",
    "train_glmm",
    "score_pool",
    "select_batch",
    "export_batch",
    "import_labels",
    "simulate_annotator",
    "simulate",
    "write_report",
}


def payload(result: types.CallToolResult) -> dict:
    assert not result.is_error, result.content[0].text
    return result.structured_content


@pytest.fixture
def server(root, looped_run):
    root.path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(looped_run, root.path / "looped")
    return create_server(root.path)


@pytest.mark.parametrize("mode", MODES)
async def test_lists_every_tool_with_schema_and_annotations(server, mode):
    async with Client(server, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= CORE_TOOLS and set(tools) == {s.name for s in TOOLS} | {"start_job", "job"}
    status = tools["status"]
    assert status.input_schema["required"] == ["run"]
    assert status.annotations.open_world_hint is True  # it asks Argilla for progress when the run pushed there
    assert tools["train_glmm"].annotations.read_only_hint is False
    assert tools["train_glmm"].annotations.open_world_hint is False
    assert "batch_size" in tools["select_batch"].input_schema["properties"]
    assert tools["select_batch"].output_schema is not None


def test_every_tool_with_mcp_only_inputs_is_a_registered_tool():
    assert set(MCP_INPUTS) <= {s.name for s in TOOLS}


@pytest.mark.parametrize("mode", MODES)
async def test_status_returns_structured_output(server, mode):
    async with Client(server, mode=mode) as client:
        out = payload(await client.call_tool("status", {"run": "looped"}))
    assert out["model_rounds"] == [1, 2, 3] and out["next_step"].startswith("stop:")


@pytest.mark.parametrize("mode", MODES)
async def test_errors_are_tool_errors_that_say_what_to_fix(server, mode):
    async with Client(server, mode=mode) as client:
        unknown = await client.call_tool("status", {"run": "nope"})
        escape = await client.call_tool("status", {"run": "../etc"})
        bad_arg = await client.call_tool("select_batch", {"run": "looped", "batch_size": 0})
        outside = await client.call_tool("import_labels", {"run": "looped", "file": "/etc/passwd"})
    assert unknown.is_error and "no run 'nope'" in unknown.content[0].text and "looped" in unknown.content[0].text
    assert escape.is_error and "not allowed" in escape.content[0].text
    assert bad_arg.is_error and "batch_size" in bad_arg.content[0].text
    assert outside.is_error and "outside the run root" in outside.content[0].text


@pytest.mark.parametrize("mode", MODES)
async def test_long_work_reports_progress(server, mode):
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with Client(server, mode=mode) as client:
        out = payload(await client.call_tool("score_pool", {"run": "looped"}, progress_callback=on_progress))
    assert out["n_scored"] == 240
    assert seen and seen[-1][0] == seen[-1][1]


@pytest.mark.parametrize("mode", MODES)
async def test_interview_elicits_the_open_questions(root, bbc_slice, mode):
    root.path.mkdir(parents=True, exist_ok=True)
    shutil.copy(bbc_slice["pool"], root.path / "pool.jsonl")
    shutil.copy(bbc_slice["heldout"], root.path / "heldout.jsonl")
    asked: list[str] = []

    async def answer(context, params):
        asked.append(params.message)
        assert "task_type" in params.requested_schema["properties"]
        return types.ElicitResult(
            action="accept",
            content={
                "pool": "pool.jsonl",
                "heldout": "heldout.jsonl",
                "task_type": "categorical",
                "labels": "business, entertainment, politics, sports, tech",
                "batch_size": 8,
                "judge": "no",
            },
        )

    async with Client(create_server(root.path), mode=mode, elicitation_callback=answer) as client:
        out = payload(await client.call_tool("interview_spec", {"run": "asked"}))
    assert asked and "Setting up run 'asked'" in asked[0]
    assert out["created"] and out["pool_size"] == 240
    spec = json.loads((root.path / "asked" / "spec.json").read_text())
    assert spec["labels"][-1] == "tech" and spec["budget"]["batch_size"] == 8 and spec["judge"]["allowed"] is False


@pytest.mark.parametrize("mode", MODES)
async def test_without_elicitation_the_open_questions_come_back(root, mode):
    async with Client(create_server(root.path), mode=mode) as client:
        out = payload(await client.call_tool("interview_spec", {"run": "later"}))
    assert not out["created"] and [q["key"] for q in out["open_questions"]][:3] == [
        "data_source",
        "labeled_state",
        "task_type",
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_declined_form_returns_the_questions(root, mode):
    async def decline(context, params):
        return types.ElicitResult(action="decline")

    async with Client(create_server(root.path), mode=mode, elicitation_callback=decline) as client:
        result = await client.call_tool("interview_spec", {"run": "later"})
    out = payload(result)
    assert not out["created"] and out["open_questions"]


async def test_stdio_server_process(root, looped_run):
    root.path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(looped_run, root.path / "looped")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "alloop", "serve", "--root", str(root.path)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        out = payload(await client.call_tool("status", {"run": "looped"}))
    assert names >= CORE_TOOLS and out["pool_size"] == 240


async def test_streamable_http_on_loopback(root, looped_run):
    import socket
    import subprocess
    import time

    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    root.path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(looped_run, root.path / "looped")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "a-token-for-this-test-only"
    process = subprocess.Popen(
        [sys.executable, "-m", "alloop", "serve", "--transport", "http", "--port", str(port), "--root", str(root.path)],
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ALLOOP_HTTP_TOKEN": token},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
            Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client,
        ):
            out = payload(await client.call_tool("status", {"run": "looped"}))
        assert out["model_rounds"] == [1, 2, 3]
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.parametrize("mode", MODES)
async def test_the_review_prompt_is_offered(server, mode):
    async with Client(server, mode=mode) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert "review_judge_disagreements" in prompts
        got = await client.get_prompt("review_judge_disagreements", {"run": "looped", "round": "2"})
    text = got.messages[0].content.text
    assert "looped" in text and "judge" in text.lower()
