"""Long calls over MCP: their descriptions say so, and a call that outlives its client lets go of the run.

The long call here is a stand-in (`hold_the_run`) that holds the run's lock and reports progress
until it is stopped, as embedding a pool or judging items does, only without the minutes.
"""

from __future__ import annotations

import itertools
import time

import anyio
import pytest
from mcp import Client
from pydantic import BaseModel

from alloop import app
from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.registry import TOOLS, tool_named

MODES = ["auto", "legacy"]
LONG_TOOLS = ["seed_set", "score_pool", "select_batch", "train_glmm", "llm_judge", "simulate"]


class HoldOutput(BaseModel):
    steps: int


ENDINGS: list[str] = []
"""How each hold_the_run call ended: 'stopped' (cancelled at a progress report) or 'gave up'."""


def hold_the_run(args: RunArgs, ctx: ToolContext) -> HoldOutput:
    """Hold the run's lock, reporting progress, until cancelled (gives up by itself after 30 s)."""
    with ctx.root.run(args.run).lock():
        try:
            for step in itertools.count():
                ctx.progress(step, None, "working")
                if step * 0.02 > 30:
                    ENDINGS.append("gave up")
                    return HoldOutput(steps=step)
                time.sleep(0.02)
        except BaseException:
            ENDINGS.append("stopped")
            raise
    raise AssertionError("unreachable")


@pytest.fixture
def server(root, bbc_run, monkeypatch):
    """The alloop server over a root with the BBC run, plus the long stand-in tool."""
    monkeypatch.setenv("ALLOOP_LOCK_WAIT", "3")  # a lock kept after the call would fail the next call in 3 s
    long = ToolSpec(name="hold_the_run", fn=hold_the_run, input_model=RunArgs, output_model=HoldOutput)
    monkeypatch.setattr(app, "TOOLS", [*TOOLS, long])
    ENDINGS.clear()
    return app.create_server(root.path)


async def start_long_call(client: Client, task_group: anyio.abc.TaskGroup) -> None:
    """Start hold_the_run in the task group and return once it is at work (its first progress report)."""
    working = anyio.Event()

    async def on_progress(progress, total, message):
        working.set()

    async def call():
        await client.call_tool("hold_the_run", {"run": "bbc"}, progress_callback=on_progress)

    task_group.start_soon(call)
    await working.wait()


async def revise(client: Client) -> dict:
    """A writer on the same run: it needs the lock."""
    result = await client.call_tool("interview_spec", {"run": "bbc", "max_rounds": 4})
    assert not result.is_error, result.content[0].text
    return result.structured_content


def test_descriptions_say_which_calls_can_take_minutes():
    for name in LONG_TOOLS:
        assert "minutes" in tool_named(name).description, name


@pytest.mark.parametrize("mode", MODES)
async def test_a_cancelled_call_releases_the_run(server, mode):
    with anyio.fail_after(60):
        async with Client(server, mode=mode) as client:
            async with anyio.create_task_group() as calls:
                await start_long_call(client, calls)
                calls.cancel_scope.cancel()  # the client gives up on the call

            assert (await revise(client))["written"]
    assert ENDINGS == ["stopped"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_whose_client_goes_away_releases_the_run(server, mode):
    async def client_that_leaves(task_status=anyio.TASK_STATUS_IGNORED):
        async with Client(server, mode=mode) as client, anyio.create_task_group() as calls:
            await start_long_call(client, calls)
            task_status.started()
            await anyio.sleep_forever()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as session:
            await session.start(client_that_leaves)
            session.cancel_scope.cancel()  # the whole client goes away mid-call

        async with Client(server, mode=mode) as client:
            assert (await revise(client))["written"]
    assert ENDINGS == ["stopped"]
