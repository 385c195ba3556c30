"""A stand-in for a long tool call, shared by the long-call, jobs and HTTP tests.

`hold_the_run` holds the run's lock and reports progress ("step N") until it is stopped, as
embedding a pool or judging items does, only without the minutes. The `stand_in` fixture offers
it beside the real tools to every server created in the test, and records how each call ended.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import anyio
import pytest
from mcp import Client
from pydantic import BaseModel

from alloop import app
from alloop.tools.base import RunArgs, ToolContext, ToolSpec
from alloop.tools.registry import TOOLS


class HoldOutput(BaseModel):
    steps: int


@dataclass
class StandIn:
    endings: list[str] = field(default_factory=list)
    """How each hold_the_run call ended: 'stopped' (cancelled at a progress report) or 'gave up'."""

    def hold_the_run(self, args: RunArgs, ctx: ToolContext) -> HoldOutput:
        """Hold the run's lock, reporting progress, until cancelled (gives up by itself after 30 s)."""
        with ctx.root.run(args.run).lock():
            try:
                for step in itertools.count():
                    ctx.progress(step, None, f"step {step}")
                    if step * 0.02 > 30:
                        self.endings.append("gave up")
                        return HoldOutput(steps=step)
                    time.sleep(0.02)
            except BaseException:
                self.endings.append("stopped")
                raise
        raise AssertionError("unreachable")

    @staticmethod
    async def start_long_call(client: Client, task_group: anyio.abc.TaskGroup) -> None:
        """Start hold_the_run on run 'bbc' in the task group; return once it is at work (its first progress)."""
        working = anyio.Event()

        async def on_progress(progress, total, message):
            working.set()

        async def call():
            await client.call_tool("hold_the_run", {"run": "bbc"}, progress_callback=on_progress)

        task_group.start_soon(call)
        await working.wait()

    @staticmethod
    async def revise(client: Client) -> dict:
        """A writer on the same run: it needs the lock."""
        result = await client.call_tool("interview_spec", {"run": "bbc", "max_rounds": 4})
        assert not result.is_error, result.content[0].text
        return result.structured_content


@pytest.fixture
def stand_in(bbc_run, monkeypatch) -> StandIn:
    """Servers created in this test offer hold_the_run; a lock kept after a call fails the next call in 3 s."""
    monkeypatch.setenv("ALLOOP_LOCK_WAIT", "3")
    made = StandIn()
    long = ToolSpec(name="hold_the_run", fn=made.hold_the_run, input_model=RunArgs, output_model=HoldOutput)
    monkeypatch.setattr(app, "TOOLS", [*TOOLS, long])
    return made
