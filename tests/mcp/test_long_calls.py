"""Long calls over MCP: their descriptions say so, and a call that outlives its client lets go of the run.

The long call here is the stand-in of tests/mcp/conftest.py (`hold_the_run`), which holds the run's
lock and reports progress until it is stopped, as embedding a pool or judging items does.
"""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from alloop import app
from alloop.tools.registry import tool_named

MODES = ["auto", "legacy"]
LONG_TOOLS = ["seed_set", "score_pool", "select_batch", "train_glmm", "llm_judge", "simulate"]


@pytest.fixture
def server(root, stand_in):
    """The alloop server over a root with the BBC run, plus the long stand-in tool."""
    return app.create_server(root.path)


def test_descriptions_say_which_calls_can_take_minutes():
    for name in LONG_TOOLS:
        assert "minutes" in tool_named(name).description, name


@pytest.mark.parametrize("mode", MODES)
async def test_a_cancelled_call_releases_the_run(server, stand_in, mode):
    with anyio.fail_after(60):
        async with Client(server, mode=mode) as client:
            async with anyio.create_task_group() as calls:
                await stand_in.start_long_call(client, calls)
                calls.cancel_scope.cancel()  # the client gives up on the call

            assert (await stand_in.revise(client))["written"]
    assert stand_in.endings == ["stopped"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_whose_client_goes_away_releases_the_run(server, stand_in, mode):
    async def client_that_leaves(task_status=anyio.TASK_STATUS_IGNORED):
        async with Client(server, mode=mode) as client, anyio.create_task_group() as calls:
            await stand_in.start_long_call(client, calls)
            task_status.started()
            await anyio.sleep_forever()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as session:
            await session.start(client_that_leaves)
            session.cancel_scope.cancel()  # the whole client goes away mid-call

        async with Client(server, mode=mode) as client:
            assert (await stand_in.revise(client))["written"]
    assert stand_in.endings == ["stopped"]
