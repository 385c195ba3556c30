"""Background jobs: a long call started with `start_job` is polled with `job`, and cancelled, freeing its run.

The long call is the stand-in of tests/mcp/conftest.py (`hold_the_run`), which holds the run's lock and
reports progress until it is stopped, as embedding a pool or training an encoder does.
"""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from alloop import app


@pytest.fixture
def server(root, stand_in):
    return app.create_server(root.path)


async def call(client: Client, tool: str, arguments: dict) -> dict:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def poll_until(client: Client, job: str, done, seconds: float = 30) -> dict:
    with anyio.fail_after(seconds):
        while True:
            state = (await call(client, "job", {"job": job}))["jobs"][0]
            if done(state):
                return state
            await anyio.sleep(0.05)


async def test_a_job_runs_a_tool_in_the_background_and_hands_over_its_result(server):
    async with Client(server) as client:
        started = (await call(client, "start_job", {"tool": "status", "arguments": {"run": "bbc"}}))["jobs"][0]
        assert started["tool"] == "status" and started["run"] == "bbc"
        finished = await poll_until(client, started["job"], lambda s: s["state"] != "running")
    assert finished["state"] == "done" and finished["result"]["run"] == "bbc"


async def test_a_cancelled_job_stops_and_frees_its_run(server):
    async with Client(server) as client:
        job = (await call(client, "start_job", {"tool": "hold_the_run", "arguments": {"run": "bbc"}}))["jobs"][0]["job"]
        working = await poll_until(client, job, lambda s: (s["progress"] or "").startswith("step"))
        assert working["state"] == "running"
        listed = await call(client, "job", {})
        assert job in [j["job"] for j in listed["jobs"]] and job in listed["next_step"]
        await call(client, "job", {"job": job, "cancel": True})
        stopped = await poll_until(client, job, lambda s: s["state"] != "running")
        revised = await call(client, "interview_spec", {"run": "bbc", "max_rounds": 4})  # needs the run's lock
    assert stopped["state"] == "cancelled"
    assert revised["run"] == "bbc"


async def test_a_job_s_failure_reads_like_the_tool_s_own_error(server):
    async with Client(server) as client:
        job = (await call(client, "start_job", {"tool": "status", "arguments": {"run": "nope"}}))["jobs"][0]["job"]
        failed = await poll_until(client, job, lambda s: s["state"] != "running")
    assert failed["state"] == "failed" and "no run 'nope'" in failed["error"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"tool": "interview_spec", "arguments": {"run": "bbc"}}, "cannot start 'interview_spec' as a job"),
        ({"tool": "nope", "arguments": {}}, "cannot start 'nope' as a job"),
        ({"tool": "select_batch", "arguments": {"run": "bbc", "batchsize": 5}}, "did you mean 'batch_size'"),
    ],
)
async def test_a_job_that_cannot_start_says_why_before_anything_runs(server, arguments, message):
    async with Client(server) as client:
        result = await client.call_tool("start_job", arguments)
        listed = await call(client, "job", {})
    assert result.is_error and message in result.content[0].text
    assert listed["jobs"] == []
