"""A tool call whose client cancels it, times out or goes away stops, and lets go of its run.

A tool runs in a worker thread, which anyio cannot interrupt: the request is cancelled at once,
but the thread would work on, holding the run's lock, until the function returns. Every progress
report is a point where the thread can stop: it asks whether the request's cancel scope was
cancelled, and if so raises the cancellation there. The tool's `with run.lock()` blocks unwind and
the run is free for the next call; atomic writes mean nothing is left half-written.
"""

from __future__ import annotations

import contextlib

import anyio
import anyio.from_thread

from alloop.tools.base import ProgressFn


def stop_when_cancelled(progress: ProgressFn) -> ProgressFn:
    """The same progress sink, raising the cancellation in the tool's thread once its request is cancelled."""

    def report(done: float, total: float | None, message: str) -> None:
        # In a thread the tool started itself (a judge's pool) there is no request to ask; the tool's thread asks.
        with contextlib.suppress(anyio.NoEventLoopError):
            anyio.from_thread.check_cancelled()
        progress(done, total, message)

    return report
