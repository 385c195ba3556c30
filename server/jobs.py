"""Background jobs over MCP: start a long tool call, poll it, cancel it.

Embedding a pool, training an encoder or judging a few hundred items takes minutes, longer than
some clients wait for one call. `start_job` runs any tool in a thread of the server and answers at
once with a job id; `job` reports its state, progress and, once done, the tool's result or error;
`job` with `cancel` stops it at its next progress report, which unwinds the tool's `with
run.lock()` so the run is free again (atomic writes leave nothing half-written). Jobs live in the
server process: a restart forgets them, the run directory keeps what they finished.

MCP-only (a person at the CLI runs a command in the background with the shell), so these specs
are built here, over one `JobBoard` per server, not in the tools registry.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alloop.boundary import failure_text
from alloop.results import cap_lists
from alloop.tools.base import ToolContext, ToolSpec
from alloop.tools.errors import InputError

NOT_AS_JOB = frozenset({"interview_spec"})
"""Tools that talk with the user through the request (an elicited form) cannot outlive it."""
KEEP_FINISHED = 50
"""Finished jobs kept for polling; older ones are forgotten first."""

JobStateName = Literal["running", "done", "failed", "cancelled"]


class JobCancelled(BaseException):
    """Raised in the job's thread at a progress report once cancel was asked (not an Exception: no
    tool's error handling may swallow it)."""


@dataclass
class Job:
    id: str
    tool: str
    run: str | None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    state: JobStateName = "running"
    progress: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


class JobBoard:
    """The server's jobs, by id; each runs in its own daemon thread."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, spec: ToolSpec, args: BaseModel, ctx: ToolContext) -> Job:
        job = Job(id=uuid.uuid4().hex[:12], tool=spec.name, run=getattr(args, "run", None))
        job_ctx = ToolContext(root=ctx.root, progress=self._progress(job), jatos_client=ctx.jatos_client, now=ctx.now)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        threading.Thread(target=self._work, args=(job, spec, args, job_ctx), name=f"job-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                known = ", ".join(self._jobs) or "none"
                raise InputError(f"no job {job_id!r} (jobs of this server: {known}); jobs end with the server")
            return self._jobs[job_id]

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    @staticmethod
    def _progress(job: Job):
        def report(done: float, total: float | None, message: str) -> None:
            if job.cancel.is_set():
                raise JobCancelled
            job.progress = f"{message} ({done:g}/{total:g})" if total else message

        return report

    @staticmethod
    def _work(job: Job, spec: ToolSpec, args: BaseModel, ctx: ToolContext) -> None:
        try:
            result = spec.fn(args, ctx)
            job.result, job.state = cap_lists(result.model_dump(mode="json", by_alias=True)), "done"
        except JobCancelled:
            job.state = "cancelled"
        except Exception as exc:
            job.error, job.state = failure_text(spec, exc), "failed"
        finally:
            job.finished = time.monotonic()

    def _forget_old(self) -> None:
        finished = sorted((j for j in self._jobs.values() if j.finished), key=lambda j: j.finished or 0)
        for job in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.id]


class StartJobInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: str = Field(description="Any tool but interview_spec.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Its arguments.")


class JobInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job: str | None = Field(None, description="Job id; default: every job.")
    cancel: bool = False


class JobState(BaseModel):
    job: str
    tool: str
    run: str | None
    state: JobStateName
    seconds: float
    progress: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class JobsOutput(BaseModel):
    jobs: list[JobState]
    next_step: str


def _state(job: Job) -> JobState:
    seconds = (job.finished or time.monotonic()) - job.started
    return JobState(
        job=job.id,
        tool=job.tool,
        run=job.run,
        state=job.state,
        seconds=round(seconds, 1),
        progress=job.progress,
        result=job.result,
        error=job.error,
    )


def _next_step(jobs: list[Job]) -> str:
    running = [j.id for j in jobs if j.state == "running"]
    if running:
        return f"poll job {running[0]} again in a while (its run stays locked until it ends); cancel=true stops it"
    return "read each job's result, then go on with the step its next_step names (or status)"


def job_specs(board: JobBoard, tools: list[ToolSpec]) -> list[ToolSpec]:
    """`start_job` and `job`, over this board and these tools."""
    by_name = {spec.name: spec for spec in tools}

    def start_job(args: StartJobInput, ctx: ToolContext) -> JobsOutput:
        """Run a long tool call (seed_set, train_glmm, simulate, llm_judge, ...) in the background; poll with job."""
        if args.tool not in by_name or args.tool in NOT_AS_JOB:
            allowed = ", ".join(name for name in by_name if name not in NOT_AS_JOB)
            raise InputError(f"cannot start {args.tool!r} as a job; choose one of {allowed}")
        spec = by_name[args.tool]
        job = board.start(spec, spec.parse(args.arguments), ctx)
        return JobsOutput(jobs=[_state(job)], next_step=_next_step([job]))

    def job(args: JobInput, ctx: ToolContext) -> JobsOutput:
        """State, progress and result of a background job (or all); cancel=true stops it and frees its run."""
        jobs = [board.get(args.job)] if args.job else board.all()
        if args.cancel:
            for one in jobs:
                one.cancel.set()
        return JobsOutput(jobs=[_state(j) for j in jobs], next_step=_next_step(jobs))

    return [
        ToolSpec(name="start_job", fn=start_job, input_model=StartJobInput, output_model=JobsOutput),
        ToolSpec(name="job", fn=job, input_model=JobInput, output_model=JobsOutput),
    ]
