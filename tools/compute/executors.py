"""Executors run one task over many shards; `run_shards` retries the failed ones and merges in order.

An executor's `map(task, inputs)` yields one outcome per input, in input order: the task
function's result, or the exception it raised (a shard that ran too long is a `ShardTimeout`).
`run_shards` sends the failed shards again, up to `retries` times, then returns every result in
input order or raises `ShardError` naming the shards that never succeeded. An AlloopError from a
shard (a bad head file, a model that does not load) would fail again the same way: it is raised
as it is, without retries. Callers write into the run only after `run_shards` returns, so a
failed step leaves no partial scores or cache rows behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from alloop.tools.base import ProgressFn, no_progress
from alloop.tools.compute.shards import TASKS
from alloop.tools.errors import AlloopError, ServiceError
from alloop.tools.secrets import scrub

log = logging.getLogger(__name__)


class ShardTimeout(TimeoutError):
    """A shard ran past the executor's timeout; it counts as failed and is retried."""


class ShardError(ServiceError):
    """Some shards failed on every attempt: the step did not happen and nothing was written."""


class Executor(Protocol):
    """Runs a task of shards.TASKS on many inputs; the outcomes come back in input order."""

    name: str
    packs_models: bool
    """Whether its workers need model folders packed (packing.py): they cannot read this machine's files."""

    def map(self, task: str, inputs: Sequence[tuple[Any, ...]]) -> Iterator[Any]:
        """One outcome per input, in order: the result, or the exception the shard raised."""
        ...


class LocalExecutor:
    """Shards in threads of this process (concurrent.futures): the reference every executor must match.

    `tasks` maps task names to functions (shards.TASKS by default). A thread cannot be stopped
    midway, so a shard that ran past `timeout_s` is discarded when it ends and counts as timed out,
    as Modal counts one it stopped.
    """

    name = "local"
    packs_models = False

    def __init__(
        self, workers: int = 1, timeout_s: float | None = None, tasks: dict[str, Callable[..., Any]] | None = None
    ) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self.tasks = dict(TASKS if tasks is None else tasks)

    def map(self, task: str, inputs: Sequence[tuple[Any, ...]]) -> Iterator[Any]:
        function = self.tasks[task]

        def one(args: tuple[Any, ...]) -> Any:
            started = time.monotonic()
            try:
                result = function(*args)
            except Exception as exc:  # an outcome to retry, not a crash of the whole step
                return exc
            seconds = time.monotonic() - started
            if self.timeout_s is not None and seconds > self.timeout_s:
                return ShardTimeout(f"ran {seconds:.1f} s, over the {self.timeout_s:g} s timeout")
            return result

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="alloop-shard") as pool:
            for future in [pool.submit(one, args) for args in inputs]:
                yield future.result()


def run_shards(
    executor: Executor,
    task: str,
    shards: Sequence[tuple[Any, ...]],
    *,
    retries: int,
    what: str,
    sizes: Sequence[int] | None = None,
    progress: ProgressFn = no_progress,
) -> list[Any]:
    """Every shard's result in shard order, each shard tried at most `retries + 1` times; else ShardError.

    `sizes` (items per shard) make the progress count items rather than shards.
    """
    sizes = list(sizes) if sizes is not None else [1] * len(shards)
    results: list[Any] = [None] * len(shards)
    failures: dict[int, BaseException] = {}
    pending = list(range(len(shards)))
    done, total = 0, sum(sizes)
    for attempt in range(1, retries + 2):
        failed: list[int] = []
        outcomes = executor.map(task, [shards[i] for i in pending])
        for i, outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failures[i] = outcome
                failed.append(i)
                continue
            results[i] = outcome
            failures.pop(i, None)
            done += sizes[i]
            progress(done, total, f"{what} on {executor.name}: {len(shards) - len(failures)}/{len(shards)} shards")
        if not failed:
            return results
        fixable = [failures[i] for i in failed if isinstance(failures[i], AlloopError)]
        if fixable:
            raise fixable[0]
        log.warning(
            "%s on %s: %d of %d shards failed (attempt %d of %d): %s",
            what,
            executor.name,
            len(failed),
            len(shards),
            attempt,
            retries + 1,
            _describe(failures[failed[0]]),
        )
        pending = failed
    first = pending[0]
    raise ShardError(
        f"{what} on {executor.name}: shard(s) {', '.join(str(i + 1) for i in pending)} of {len(shards)} failed "
        f"{retries + 1} time(s); shard {first + 1}'s last error: {_describe(failures[first])}. Nothing was "
        "written to the run. Raise compute.timeout_s or compute.retries, or lower compute.shard_size, in "
        "spec.json; or set compute.backend to 'local'."
    ) from failures[first]


def _describe(exc: BaseException) -> str:
    """One scrubbed line: an error text never carries a token into a message or a log."""
    text = scrub(" ".join(f"{type(exc).__name__}: {exc}".split()))
    return text if len(text) <= 400 else text[:397] + "..."
